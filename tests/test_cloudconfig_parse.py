"""providers/cloudconfig.py: #cloud-config user-data and vendor-data into the data model,
with one warning per item not taken and never a crash."""

from __future__ import annotations

import gzip

from providers.cloudconfig import from_documents
from providers.nocloud import parse_seed

KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAmeFkgadcLsKOqZJk5aqI2qmUsYtEDji4ATBoC9Gyzk "
       "operator@omnios-host")
HASH = ("$6$Qz1xYw2vUt3s$tH9kN4qq4iw3vGYJAHplmkU2lYpnC4Pddqb3IO.uWnu4pa5FYoqs8un0y8tdH6Qm"
        "A78b0aQrH3rBPJPYty5jT.")


def cc(text: str, vendor: str | None = None):
    return from_documents(text.encode(), vendor.encode() if vendor else None, "nocloud")


def test_omnios_zone_cloud_config_is_taken_whole():
    config, script, warnings = cc(f"""#cloud-config
hostname: web-1
disable_root: false
password: {HASH}
chpasswd:
  expire: false
ssh_pwauth: true
ssh_authorized_keys:
  - {KEY}
users:
  - default
  - name: root
    ssh_authorized_keys:
      - {KEY}
""")
    assert warnings == [] and script is None
    assert config.hostname == "web-1" and config.disable_root is False
    assert config.password == HASH and config.chpasswd_expire is False
    assert config.ssh_pwauth is True and config.default_user is True
    assert [u.name for u in config.users] == ["root"]
    assert config.users[0].ssh_authorized_keys == (KEY,)
    assert HASH not in repr(config)   # secrets never in a repr


def test_unknown_keys_one_warning_each_naming_them():
    config, _, warnings = cc("#cloud-config\napt: {}\nsnap: {}\nhostname: h\n")
    assert config.hostname == "h"
    assert len(warnings) == 2
    assert "'apt'" in warnings[0] and "'snap'" in warnings[1]


def test_user_data_wins_over_vendor_data_per_top_level_key():
    config, _, warnings = cc("#cloud-config\nhostname: from-user\n",
                             "#cloud-config\nhostname: from-vendor\ntimezone: UTC\n")
    assert warnings == []
    assert config.hostname == "from-user" and config.timezone == "UTC"


def test_vendor_data_disabled_by_user_data():
    config, _, warnings = cc("#cloud-config\nvendor_data: {enabled: false}\n",
                             "#cloud-config\ntimezone: UTC\n")
    assert config.timezone is None
    assert any("vendor_data.enabled: false" in w for w in warnings)


def test_multipart_and_include_are_clear_warnings_not_crashes():
    mime = "Content-Type: multipart/mixed; boundary=X\nMIME-Version: 1.0\n\n--X--\n"
    for text, kind in ((mime, "multipart MIME"), ("#include\nhttp://x/y\n", "#include"),
                       ("#cloud-boothook\necho\n", "#cloud-boothook")):
        config, script, warnings = cc(text)
        assert config is None and script is None
        assert len(warnings) == 1 and kind in warnings[0] and "not supported" in warnings[0]


def test_gzip_user_data_is_decompressed():
    config, _, warnings = from_documents(gzip.compress(b"#cloud-config\ntimezone: UTC\n"),
                                         None, "nocloud")
    assert warnings == [] and config.timezone == "UTC"


def test_wrong_types_are_per_item_warnings_and_the_rest_is_taken():
    config, _, warnings = cc("""#cloud-config
users:
  - name: "evil; rm -rf /"
  - name: good
    shell: bin/sh
    uid: 3
  - 42
ssh_pwauth: maybe
runcmd:
  - [echo, "a b"]
  - {x: 1}
  - echo done
write_files:
  - path: ../etc/passwd
    content: x
  - path: /var/metadata/state.msgpack
  - path: /etc/motd
    content: aGVsbG8K
    encoding: b64
    permissions: '0600'
""")
    assert [u.name for u in config.users] == ["good"]
    assert config.users[0].shell is None and config.users[0].uid is None
    assert config.ssh_pwauth is None
    assert config.runcmd == ("echo 'a b'", "echo done")
    assert [(f.path, f.content, f.permissions) for f in config.write_files] == \
        [("/etc/motd", b"hello\n", 0o600)]
    text = "\n".join(warnings)
    for expected in ("not a valid login name", "bin/sh", "reserved", "users[2]", "maybe",
                     "runcmd[1]", "../etc/passwd", "/var/metadata"):
        assert expected in text, expected


def test_deep_and_huge_documents_are_refused_with_a_warning():
    config, _, warnings = cc("#cloud-config\nruncmd: " + "[" * 200 + "]" * 200 + "\n")
    assert config is None and "nested more than" in warnings[0]
    laughs = "#cloud-config\na: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{c}: &{c} [{','.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    config, _, warnings = cc(laughs)
    # Aliases are shared, not copied: it loads small, and the unknown keys are warnings.
    assert config is not None and len(warnings) == 9


def test_invalid_yaml_is_a_warning_not_a_failure():
    config, _, warnings = cc("#cloud-config\nusers: [a\n")
    assert config is None and "not valid YAML" in warnings[0]


def test_nocloud_seed_takes_the_cloud_config_hostname_and_vendor_data():
    md = parse_seed({"meta-data": b"instance-id: i-1\nlocal-hostname: meta\n",
                     "user-data": b"#cloud-config\nfqdn: web-1.example.com\n",
                     "vendor-data": b"#cloud-config\ntimezone: Europe/Berlin\n"})
    assert md.hostname == "web-1.example.com"
    assert md.origin("hostname") == "nocloud:user-data fqdn"
    assert md.cloud_config.timezone == "Europe/Berlin"
    assert md.user_script is None and md.warnings == ()


def test_chpasswd_list_users_and_random():
    config, _, warnings = cc(f"""#cloud-config
chpasswd:
  expire: true
  users:
    - {{name: alice, password: plain-secret, type: text}}
    - {{name: bob, password: '{HASH}'}}
    - {{name: carol, type: RANDOM}}
  list: |
    dave:{HASH}
    erin:another
""")
    got = [(p.name, p.hashed) for p in config.chpasswd]
    assert got == [("alice", False), ("bob", True), ("dave", True), ("erin", False)]
    assert len(warnings) == 1 and "RANDOM" in warnings[0]
    assert "plain-secret" not in "\n".join(warnings)


def test_smartos_cloud_init_keys_and_root_pw():
    from providers.smartos import parse

    md = parse({"sdc:uuid": b"u-1", "root_pw": b"smartos-secret",
                "cloud-init:user-data": b"#cloud-config\ntimezone: UTC\n",
                "cloud-init:vendor-data": b"#cloud-config\ntimezone: Europe/Berlin\n"
                                          b"ssh_pwauth: true\n"})
    cc = md.cloud_config
    assert cc.timezone == "UTC" and cc.ssh_pwauth is True
    assert [(p.name, p.hashed) for p in cc.chpasswd] == [("root", False)]
    assert cc.chpasswd_expire is False
    assert md.warnings == () and "smartos-secret" not in repr(md)
