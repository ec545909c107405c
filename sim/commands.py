"""Where illumos keeps each command the agent runs; the stand-ins are installed there."""

COMMAND_PATHS = {
    "dladm": "/usr/sbin/dladm",
    "ipadm": "/usr/sbin/ipadm",
    "dhcpinfo": "/sbin/dhcpinfo",
    "route": "/usr/sbin/route",
    "zpool": "/usr/sbin/zpool",
    "zfs": "/usr/sbin/zfs",
    "zdb": "/usr/sbin/zdb",
    "diskinfo": "/usr/bin/diskinfo",
    "prtvtoc": "/usr/sbin/prtvtoc",
    "format": "/usr/sbin/format",
    "fmthard": "/usr/sbin/fmthard",
    "prtconf": "/usr/sbin/prtconf",
    "swap": "/usr/sbin/swap",
    "hostname": "/usr/bin/hostname",
    "svcadm": "/usr/sbin/svcadm",
    "svcprop": "/usr/bin/svcprop",
    "smbios": "/usr/sbin/smbios",
    "mount": "/usr/sbin/mount",
    "umount": "/usr/sbin/umount",
    "fstyp": "/usr/sbin/fstyp",
    "ssh-keygen": "/usr/bin/ssh-keygen",
    "useradd": "/usr/sbin/useradd",
    "usermod": "/usr/sbin/usermod",
    "groupadd": "/usr/sbin/groupadd",
    "pkg": "/usr/bin/pkg",
}

# Installed only where the platform has them (open-vm-tools on VMware): an emulator's
# lay_out() calls sim.guest.install_standin(root, name).
OPTIONAL_COMMAND_PATHS = {
    "vmware-rpctool": "/usr/bin/vmware-rpctool",
}
