#!/bin/sh
#
# Start method of svc:/system/illumos/userscript:default (smf/userscript.xml), installed
# as /usr/lib/userscript.sh. Runs the first-boot script the metadata agent installed at
# /var/metadata/userscript, then cloud-config's runcmd (/var/metadata/runcmd), each once,
# then disables this service. runcmd has records of its own (runcmd.started/.done/.failed),
# written the same way as those below.
#
# Written for POSIX sh (illumos /bin/sh is ksh93); `bash -n` and dash also accept it.
#
# Records, in /var/metadata, keyed by the script's SHA-256 and the instance it is for
# (KEY = "<sha256>/<tag>", the tag the agent wrote to userscript.instance; just "<sha256>"
# without that file), so that a new script or a new instance (a new VM from the image) runs
# even where an old one already did, while the same instance never runs it twice, even
# when the agent lost its checkpoint and installed the script again:
#   userscript.started  KEY, written (atomically) just BEFORE the script runs
#   userscript.done     KEY, written (atomically: temp file + mv) just AFTER it exits 0
#   userscript.failed   "KEY <exit status>" after it exits non-zero
# On start:
#   done == KEY           the script already completed: do not run it again, just
#                         disable this service and exit SMF_EXIT_OK.
#   started == KEY,       the last run never recorded completion: the system went down
#   no done/failed        mid-script, or between the script's success and the record.
#                         That is logged as such and the script runs AGAIN: as the
#                         agent's README says, a first-boot script may run more than
#                         once, so it must be idempotent. (Recording "done" before
#                         running would instead lose a script cut short by a crash.)
#   failed == KEY         an operator cleared the maintenance state: run it again.
#
# Exit status, from /lib/svc/share/smf_include.sh:
#   SMF_EXIT_OK (0)          ran and recorded, already done, or no script at all.
#   SMF_EXIT_ERR_FATAL (95)  the script failed (or its success could not be recorded).
#                            Fatal on purpose: a plain non-zero exit makes svc.startd
#                            start the method again at once, a few times, which would
#                            re-run a half-done, possibly non-idempotent script with no
#                            one looking. Fatal puts the instance straight into
#                            maintenance: `svcs -x` shows it with this log, and after a
#                            fix `svcadm clear svc:/system/illumos/userscript:default`
#                            runs the script again.
#   SMF_EXIT_ERR_CONFIG (96) /var/metadata/userscript is not an executable regular file.
#   SMF_EXIT_ERR_NOSMF (99)  not started by SMF (SMF_FMRI unset).
#
# The script's contents are never printed (they may hold secrets): only its checksum,
# its exit status and its own output reach the service log.
#
# METADATA_ROOT (testing only; empty on a real system) is prefixed to every path this
# script touches, including the smf_include.sh it sources and the svcadm it runs, so the
# simulated guest under sim/ exercises exactly this file.

METADATA_ROOT=${METADATA_ROOT:-}

. "$METADATA_ROOT/lib/svc/share/smf_include.sh"

STATE_DIR="$METADATA_ROOT/var/metadata"
USERSCRIPT="$STATE_DIR/userscript"
STARTED="$STATE_DIR/userscript.started"
DONE="$STATE_DIR/userscript.done"
FAILED="$STATE_DIR/userscript.failed"
INSTANCE="$STATE_DIR/userscript.instance"
RUNCMD="$STATE_DIR/runcmd"
SVCADM="$METADATA_ROOT/usr/sbin/svcadm"
DIGEST="$METADATA_ROOT/usr/bin/digest"
SYNC="$METADATA_ROOT/usr/bin/sync"
SELF_FMRI="svc:/system/illumos/userscript:default"

say() {
	printf 'userscript: %s\n' "$*"
}

complain() {
	printf 'userscript: ERROR: %s\n' "$*" >&2
}

#
# The script's SHA-256 in hex. digest(1) is the illumos tool; sha256sum (GNU coreutils)
# serves hosts without it, such as the simulated guest's.
#
checksum() {
	if [ -x "$DIGEST" ]; then
		"$DIGEST" -a sha256 "$1"
	else
		sha256sum < "$1" | { read -r sum _rest; printf '%s\n' "$sum"; }
	fi
}

# First word of a record file; empty when the file is absent.
record() {
	if [ -f "$1" ]; then
		{ read -r first _rest; printf '%s\n' "$first"; } < "$1"
	fi
}

#
# Replace record file $1 with the line $2, atomically: a crash leaves either the old
# record or the new one, never a torn one.
#
write_record() {
	_tmp="$STATE_DIR/.$(basename "$1").$$"
	if printf '%s\n' "$2" > "$_tmp" && mv -f "$_tmp" "$1"; then
		return 0
	fi
	rm -f "$_tmp"
	return 1
}

#
# Persistently disable this instance. Not `disable -t`: a temporary disable lasts only
# until the next boot, so the service would start again on every boot; the persistent
# form keeps it off until the metadata agent enables it for a new script. Not `-s`
# either: waiting for this instance to reach "disabled" from inside its own start method
# would wait for this very method to exit. svc.startd acts on the request once the
# method has returned.
#
disable_self() {
	if ! "$SVCADM" disable "$SMF_FMRI"; then
		complain "could not disable $SMF_FMRI; the done record still keeps the script" \
		    "from running again"
	fi
}

if [ -z "${SMF_FMRI:-}" ]; then
	complain "SMF_FMRI is not set: run this as the start method of $SELF_FMRI" \
	    "(svcadm enable $SELF_FMRI)"
	exit "$SMF_EXIT_ERR_NOSMF"
fi

#
# Run one script, /var/metadata/$1, with its records $1.started/.done/.failed, as the
# header describes; $2 names it in messages. Returns 0 (ran and recorded, already done,
# or absent), SMF_EXIT_ERR_FATAL or SMF_EXIT_ERR_CONFIG.
#
run_one() {
	_name=$1
	_what=$2
	_script="$STATE_DIR/$_name"
	_started="$STATE_DIR/$_name.started"
	_done="$STATE_DIR/$_name.done"
	_failed="$STATE_DIR/$_name.failed"

	if [ ! -e "$_script" ] && [ ! -h "$_script" ]; then
		return "$SMF_EXIT_OK"
	fi

	if [ -h "$_script" ] || [ ! -f "$_script" ] || [ ! -x "$_script" ]; then
		complain "/var/metadata/$_name is not an executable regular file;" \
		    "it was not run (the metadata agent installs it with mode 0700)"
		return "$SMF_EXIT_ERR_CONFIG"
	fi

	if ! sum=$(checksum "$_script") || [ -z "$sum" ]; then
		complain "could not compute the SHA-256 of /var/metadata/$_name; it was not run"
		return "$SMF_EXIT_ERR_FATAL"
	fi
	short=$(printf '%.12s' "$sum")
	# The instance tag (a plain word the agent wrote; never a link followed).
	_tag=
	if [ -f "$INSTANCE" ] && [ ! -h "$INSTANCE" ]; then
		_tag=$(record "$INSTANCE")
	fi
	key="$sum${_tag:+/$_tag}"

	if [ "$(record "$_done")" = "$key" ]; then
		say "$_what sha256:$short already completed on an earlier start;" \
		    "not running it again"
		return "$SMF_EXIT_OK"
	fi

	if [ "$(record "$_failed")" = "$key" ]; then
		# The failed record is "<sha256> <status>": its second word is the status.
		last_status=$(sed -n '1s/^[^ ]* //p' "$_failed")
		say "$_what sha256:$short failed on its last run (exit status $last_status);" \
		    "running it again"
	elif [ "$(record "$_started")" = "$key" ]; then
		say "$_what sha256:$short was started before but its completion was never" \
		    "recorded (the system stopped during the script or just after it);" \
		    "running it again: user scripts must be idempotent"
	fi

	if ! write_record "$_started" "$key"; then
		complain "could not write $_started; the script was not run"
		return "$SMF_EXIT_ERR_FATAL"
	fi
	rm -f "$_failed"

	say "running $_what sha256:$short"
	#
	# The script gets neither this method's SMF variables (smf_clear_env: were it to run a
	# method script of its own, that one would believe it was under SMF) nor a terminal.
	#
	( smf_clear_env; unset METADATA_ROOT; cd / && exec "$_script" ) < /dev/null
	status=$?

	if [ "$status" -ne 0 ]; then
		if [ "$status" -gt 128 ]; then
			complain "$_what sha256:$short was killed by signal $((status - 128))" \
			    "(exit status $status)"
		else
			complain "$_what sha256:$short failed with exit status $status"
		fi
		write_record "$_failed" "$key $status" ||
		    complain "could not write $_failed"
		complain "fix the cause, then: svcadm clear $SMF_FMRI (runs the script again)"
		return "$SMF_EXIT_ERR_FATAL"
	fi

	if ! write_record "$_done" "$key"; then
		complain "$_what sha256:$short succeeded but $_done could not be written:" \
		    "it will run again on the next start"
		return "$SMF_EXIT_ERR_FATAL"
	fi
	# Push the record to stable storage now, shrinking the window in which a crash would
	# lose it (and run the script again) from a ZFS transaction group to this call.
	if [ -x "$SYNC" ]; then
		"$SYNC"
	fi
	say "$_what sha256:$short completed; recorded in /var/metadata/$_name.done"
	return "$SMF_EXIT_OK"
}

if [ ! -e "$USERSCRIPT" ] && [ ! -h "$USERSCRIPT" ] && [ ! -e "$RUNCMD" ] && \
    [ ! -h "$RUNCMD" ]; then
	say "no user script at /var/metadata/userscript: nothing to run"
	disable_self
	exit "$SMF_EXIT_OK"
fi

#
# The first-boot script, then cloud-config's runcmd (written by the agent as
# /var/metadata/runcmd), as cloud-init orders them: runcmd only once the script succeeded.
#
run_one userscript "user script" || exit $?
run_one runcmd "runcmd script" || exit $?
disable_self
exit "$SMF_EXIT_OK"
