"""/etc as a fresh OmniOS image has it, before the agent has run."""

from __future__ import annotations

NODENAME = "unknown\n"

INET_HOSTS = """\
#
# Copyright 2009 Sun Microsystems, Inc.  All rights reserved.
# Use is subject to license terms.
#
# Internet host table
#
::1		localhost
127.0.0.1	localhost loghost
"""

NSSWITCH = """\
#
# /etc/nsswitch.files:
#
# An example file that could be copied over to /etc/nsswitch.conf; it
# does not use any naming service.
#
passwd:     files
group:      files
hosts:      files
ipnodes:    files
networks:   files
protocols:  files
rpc:        files
ethers:     files
netmasks:   files
bootparams: files
publickey:  files
netgroup:   files
automount:  files
aliases:    files
services:   files
printers:	user files
auth_attr:  files
prof_attr:  files
project:    files
tnrhtp:     files
tnrhdb:     files
"""

VFSTAB = """\
#device		device		mount		FS	fsck	mount	mount
#to mount	to fsck		point		type	pass	at boot	options
#
/devices	-		/devices	devfs	-	no	-
/proc		-		/proc		proc	-	no	-
ctfs		-		/system/contract ctfs	-	no	-
objfs		-		/system/object	objfs	-	no	-
sharefs		-		/etc/dfs/sharetab	sharefs	-	no	-
fd		-		/dev/fd		fd	-	no	-
swap		-		/tmp		tmpfs	-	yes	-
"""

FILES = {
    "etc/nodename": NODENAME,
    "etc/inet/hosts": INET_HOSTS,
    "etc/nsswitch.conf": NSSWITCH,
    "etc/vfstab": VFSTAB,
}


# ---- accounts, as an OmniOS image ships them (before any user was added) --------------------
PASSWD = """\
root:x:0:0:Super-User:/root:/usr/bin/bash
daemon:x:1:1::/:
bin:x:2:2::/usr/bin:
sys:x:3:3::/:
adm:x:4:4:Admin:/var/adm:
lp:x:71:8:Line Printer Admin:/usr/spool/lp:
uucp:x:5:5:uucp Admin:/usr/lib/uucp:
nuucp:x:9:9:uucp Admin:/var/spool/uucppublic:/usr/lib/uucp/uucico
dladm:x:15:65:Datalink Admin:/:
netadm:x:16:65:Network Admin:/:
netcfg:x:17:65:Network Configuration Admin:/:
smmsp:x:25:25:SendMail Message Submission Program:/:
sshd:x:22:22:sshd privsep:/var/empty:/bin/false
nobody:x:60001:60001:NFS Anonymous Access User:/:
noaccess:x:60002:60002:No Access User:/:
nobody4:x:65534:65534:SunOS 4.x NFS Anonymous Access User:/:
"""

SHADOW = "".join(f"{name}:{pw}:6445::::::\n" for name, pw in (
    ("root", "NP"), ("daemon", "NP"), ("bin", "NP"), ("sys", "NP"), ("adm", "NP"),
    ("lp", "NP"), ("uucp", "NP"), ("nuucp", "NP"), ("dladm", "*LK*"), ("netadm", "*LK*"),
    ("netcfg", "*LK*"), ("smmsp", "NP"), ("sshd", "*LK*"), ("nobody", "*LK*"),
    ("noaccess", "*LK*"), ("nobody4", "*LK*")))

GROUP = """\
root::0:
other::1:root
bin::2:root,daemon
sys::3:root,bin,adm
adm::4:root,daemon
uucp::5:root
mail::6:root
tty::7:root,adm
lp::8:root,adm
nuucp::9:root
staff::10:
daemon::12:root
sysadmin::14:
smmsp::25:
sshd::22:
netadm::65:
nobody::60001:
noaccess::60002:
nogroup::65534:
"""

USER_ATTR = """\
#
# The system provided entries are stored in different files
# under "/etc/user_attr.d".  They should not be copied to this file.
#
# Only local changes should be stored in this file.
#
root::::auths=solaris.*;profiles=All;lock_after_retries=no
"""

INIT_DEFAULTS = """\
#
# This file is /etc/default/init.  /etc/TIMEZONE is a symlink to this file.
# This file looks like a shell script, but it is not.  To maintain
# compatibility with old versions of /etc/TIMEZONE, some shell constructs
# (i.e., export commands) are allowed in this file, but are ignored.
#
# Lines of this file should be of the form VAR=value, where VAR is one of
# TZ, LANG, CMASK, or any of the LC_* environment variables.  value may
# be enclosed in double quotes (") or single quotes (').
#
TZ=UTC
CMASK=022
"""

SSHD_CONFIG = """\
# OpenSSH server configuration (OmniOS). See sshd_config(5).
PermitRootLogin without-password
#PasswordAuthentication yes
KbdInteractiveAuthentication no
UsePAM yes
Subsystem sftp internal-sftp
"""

FILES.update({
    "etc/passwd": PASSWD,
    "etc/shadow": SHADOW,
    "etc/group": GROUP,
    "etc/user_attr": USER_ATTR,
    "etc/default/init": INIT_DEFAULTS,
    "etc/ssh/sshd_config": SSHD_CONFIG,
    # zoneinfo: a few of the compiled zone files, empty stand-ins (only their presence counts)
    "usr/share/lib/zoneinfo/UTC": "",
    "usr/share/lib/zoneinfo/Europe/Berlin": "",
    "usr/share/lib/zoneinfo/America/New_York": "",
})
MODES = {"etc/shadow": 0o400}
