"""The SMF manifests (valid against the illumos DTD, the dependencies the issue asks for, a
start method SMF can see fail), the method script's syntax, the simulated smf_include.sh,
and the agent's settings read as SMF properties through the svcprop stand-in."""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest
from guest import PROJECT_DIR, make_guest

from fsm import errors
from fsm.errors import CommandError, ConfigError, ParseError
from fsm.settings import SCHEMA, parse
from fsm.smfprops import (
    DECLARED_TYPE,
    merged,
    parse_smf_settings,
    property_name,
    read_smf_settings,
    split_records,
)
from fsm.system import System
from sim import smffiles
from sim.guest import METADATA_FMRI

# illumos-gate usr/src/cmd/svc/dtd/service_bundle.dtd.1, kept in ../shared/smf/ beside the
# checkout (SMF_DTD overrides); .ci/run refuses to run the tests without it.
DTD = os.environ.get("SMF_DTD") or os.path.normpath(
    os.path.join(PROJECT_DIR, "..", "shared", "smf", "service_bundle.dtd.1"))
DTD_MISSING = (f"the SMF DTD is not at {DTD}: the manifests were NOT validated. Put "
               "illumos-gate's usr/src/cmd/svc/dtd/service_bundle.dtd.1 at "
               "../shared/smf/service_bundle.dtd.1 beside the checkout, or set SMF_DTD to "
               "its path (.ci/run fails without it)")
MANIFESTS = ("metadata.xml", "userscript.xml")
CHANGE_PHASES = ("NETWORK", "IDENTITY", "STORAGE", "USERSCRIPT")
DETECT_ALLOWANCE_S = 15  # smbios 5 s + fstyp 5 s on each of two disks + the serial probe


def manifest(name: str) -> ET.Element:
    service = ET.parse(os.path.join(PROJECT_DIR, "smf", name)).getroot().find("service")
    assert service is not None
    return service


def methods(service: ET.Element) -> dict[str, ET.Element]:
    return {m.get("name"): m for m in service.findall("exec_method")}


def fmris(service: ET.Element, kind: str) -> dict[str, tuple[str, str]]:
    """FMRI -> (grouping, restart_on) of each dependency or dependent."""
    out = {}
    for dep in service.findall(kind):
        for fmri in dep.findall("service_fmri"):
            out[fmri.get("value")] = (dep.get("grouping"), dep.get("restart_on"))
    return out


def duration(service: ET.Element) -> str | None:
    for pg in service.findall("property_group"):
        if pg.get("name") == "startd":
            for pv in pg.findall("propval"):
                if pv.get("name") == "duration":
                    return pv.get("value")
    return None


# ---- validity --------------------------------------------------------------------------
@pytest.mark.parametrize("name", MANIFESTS)
def test_manifest_validates_against_the_illumos_dtd(name):
    if not shutil.which("xmllint"):
        pytest.skip("xmllint is not installed (apt-get install libxml2-utils; .ci/run does)")
    if not os.path.exists(DTD):
        pytest.skip(DTD_MISSING)
    proc = subprocess.run(["xmllint", "--noout", "--nonet", "--dtdvalid", DTD,
                           os.path.join(PROJECT_DIR, "smf", name)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "validity error" not in proc.stderr


def test_metadata_manifest_is_a_transient_enabled_single_instance():
    svc = manifest("metadata.xml")
    assert svc.get("name") == "system/illumos/metadata"
    assert svc.find("create_default_instance").get("enabled") == "true"
    assert svc.find("single_instance") is not None
    assert duration(svc) == "transient"


def test_metadata_manifest_dependencies_and_dependents():
    svc = manifest("metadata.xml")
    assert fmris(svc, "dependency") == {
        fmri: ("require_all", "none") for fmri in (
            "svc:/system/filesystem/root", "svc:/system/filesystem/minimal",
            "svc:/network/loopback", "svc:/network/physical", "svc:/milestone/devices")}
    assert fmris(svc, "dependent") == {
        fmri: ("optional_all", "none") for fmri in (
            "svc:/milestone/network", "svc:/milestone/sysconfig", "svc:/system/identity",
            "svc:/network/routing-setup", "svc:/network/ssh")}
    names = [d.get("name") for d in svc.findall("dependency") + svc.findall("dependent")]
    assert len(names) == len(set(names))


def test_metadata_start_method_is_the_agent_itself_not_a_pipeline():
    start = methods(manifest("metadata.xml"))["start"]
    assert start.get("exec") == "/usr/lib/metadata run"
    assert "|" not in start.get("exec")
    assert methods(manifest("metadata.xml"))["stop"].get("exec") == ":true"


def test_metadata_start_timeout_covers_the_bounded_waits():
    """The sum the manifest's comment states, recomputed from the defaults."""
    t = {key: spec[1] for key, spec in SCHEMA["timeouts"].items()}
    needed = (DETECT_ALLOWANCE_S + t["fetch"] + t["dhcp"] + len(CHANGE_PHASES) * t["command"]
              + t["devlinks"])
    timeout = int(methods(manifest("metadata.xml"))["start"].get("timeout_seconds"))
    assert timeout >= needed, f"start timeout {timeout} s < {needed:g} s of bounded waits"
    assert timeout <= needed + 120, "keep the timeout near the stated sum"


def test_config_properties_map_one_to_one_to_the_settings_schema():
    svc = manifest("metadata.xml")
    config = [pg for pg in svc.findall("property_group") if pg.get("name") == "config"]
    assert len(config) == 1 and config[0].get("type") == "application"
    declared = {f"config/{p.get('name')}": p.get("type") for p in config[0].findall("property")}
    wanted = {property_name(s, k): DECLARED_TYPE[spec[0]]
              for s, keys in SCHEMA.items() for k, spec in keys.items()}
    assert declared == wanted
    assert not config[0].findall("propval")  # no values: unset, so the TOML file counts
    assert all(len(p) == 0 for p in config[0].findall("property"))
    documented = {f"config/{p.get('name')}"
                  for p in svc.find("template").iter("prop_pattern")}
    assert documented == set(wanted)


@pytest.mark.parametrize("name", MANIFESTS)
def test_manifest_template_names_and_documents_the_service(name):
    template = manifest(name).find("template")
    assert template.find("common_name/loctext").text.strip()
    assert template.find("documentation") is not None
    assert len(template.find("documentation")) > 0


def test_userscript_manifest():
    svc = manifest("userscript.xml")
    assert svc.get("name") == "system/illumos/userscript"
    assert svc.find("create_default_instance").get("enabled") == "false"
    assert svc.find("single_instance") is not None
    assert duration(svc) == "transient"
    assert fmris(svc, "dependency") == {
        "svc:/system/illumos/metadata": ("require_all", "none"),
        "svc:/milestone/multi-user": ("require_all", "none")}
    start = methods(svc)["start"]
    assert start.get("exec") == "/usr/lib/userscript.sh"
    assert int(start.get("timeout_seconds")) >= 3600


# ---- the method script and smf_include.sh ----------------------------------------------
@pytest.mark.parametrize("shell", [sh for sh in ("bash", "dash") if shutil.which(sh)])
def test_userscript_method_syntax(shell):
    proc = subprocess.run([shell, "-n", os.path.join(PROJECT_DIR, "smf", "userscript.sh")],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr


def test_simulated_smf_include_defines_the_illumos_exit_codes(tmp_path):
    smffiles.lay_out(str(tmp_path))
    names = ("SMF_EXIT_OK", "SMF_EXIT_NODAEMON", "SMF_EXIT_ERR_FATAL", "SMF_EXIT_ERR_CONFIG",
             "SMF_EXIT_MON_DEGRADE", "SMF_EXIT_MON_OFFLINE", "SMF_EXIT_ERR_NOSMF",
             "SMF_EXIT_ERR_PERM")
    script = f". {tmp_path}/{smffiles.SMF_INCLUDE_PATH}; " + "; ".join(
        f'echo {n}=${n}' for n in names) + "; echo OTHER=[${SMF_EXIT_ERR_OTHER:-}]"
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True,
                         timeout=30).stdout
    values = dict(line.split("=", 1) for line in out.splitlines())
    assert values == {"SMF_EXIT_OK": "0", "SMF_EXIT_NODAEMON": "94", "SMF_EXIT_ERR_FATAL": "95",
                      "SMF_EXIT_ERR_CONFIG": "96", "SMF_EXIT_MON_DEGRADE": "97",
                      "SMF_EXIT_MON_OFFLINE": "98", "SMF_EXIT_ERR_NOSMF": "99",
                      "SMF_EXIT_ERR_PERM": "100", "OTHER": "[]"}
    assert values["SMF_EXIT_ERR_FATAL"] == str(errors.SMF_EXIT_ERR_FATAL)
    assert values["SMF_EXIT_ERR_CONFIG"] == str(errors.SMF_EXIT_ERR_CONFIG)
    assert os.access(tmp_path / smffiles.USERSCRIPT_METHOD_PATH, os.X_OK)
    assert (tmp_path / smffiles.MANIFEST_DIR / "metadata.xml").exists()


# ---- settings as SMF properties ----------------------------------------------------------
def test_split_records_undoes_svcprop_escaping():
    text = ('config/log_console astring /dev/my\\ console\\;x\n'
            'config/ec2_endpoint astring ""\n'
            'config/smartos_device astring \\"\\"\n'
            'config/digitalocean_endpoint astring a\\\nb\n'
            'config/timeouts_dhcp astring\n')
    assert split_records(text) == [
        ["config/log_console", "astring", "/dev/my console;x"],
        ["config/ec2_endpoint", "astring", ""],
        ["config/smartos_device", "astring", '""'],
        ["config/digitalocean_endpoint", "astring", "a\nb"],
        ["config/timeouts_dhcp", "astring"]]


def test_parse_coerces_per_schema_and_skips_unset_properties():
    got = parse_smf_settings("config/timeouts_dhcp astring 7.5\n"
                             "config/timeouts_command count 12\n"
                             "config/network_skip boolean true\n"
                             "config/log_level astring debug\n"
                             "config/timeouts_fetch astring\n")
    assert got == {"timeouts": {"dhcp": 7.5, "command": 12.0}, "network": {"skip": True},
                   "log": {"level": "debug"}}
    assert isinstance(got["timeouts"]["command"], float)


@pytest.mark.parametrize("line, problem", [
    ("config/bogus_key astring x", "unknown property"),
    ("config/network_skip astring true", "must be boolean"),
    ("config/timeouts_dhcp astring soon", "not a number"),
    ("config/timeouts_dhcp astring -1", "non-negative"),
    ("config/timeouts_dhcp astring nan", "finite"),
    ("config/timeouts_dhcp boolean true", "must be count or integer or astring"),
    ("config/log_level astring loud", "must be one of"),
    ("config/ec2_endpoint astring a b", "one value"),
])
def test_bad_properties_are_config_errors_naming_the_property(line, problem):
    with pytest.raises(ConfigError) as e:
        parse_smf_settings(line + "\n", METADATA_FMRI)
    prop = line.split()[0]
    assert e.value.key == prop and e.value.source == METADATA_FMRI
    assert problem in e.value.problem
    assert e.value.exit_code == errors.SMF_EXIT_ERR_CONFIG


def test_unexpected_svcprop_output_is_a_parse_error():
    with pytest.raises(ParseError):
        parse_smf_settings("general/enabled boolean true\n")
    with pytest.raises(ParseError):
        parse_smf_settings("config/log_level\n")


def _set_properties(guest, props: dict) -> None:
    services = guest.state()["services"]
    services[METADATA_FMRI]["properties"] = props
    guest.set_state(services=services)


def test_read_smf_settings_through_the_svcprop_standin(tmp_path):
    guest = make_guest(tmp_path, "qemu")
    _set_properties(guest, {
        "config/timeouts_dhcp": ["astring", "5"],
        "config/network_skip": ["boolean", "true"],
        "config/log_console": ["astring", "/dev/odd name\\here"],
        "config/ec2_endpoint": ["astring", ""],
        "general/enabled": ["boolean", "true"],  # another group: not read
    })
    got = read_smf_settings(System(guest.root), METADATA_FMRI)
    assert got == {"timeouts": {"dhcp": 5.0}, "network": {"skip": True},
                   "log": {"console": "/dev/odd name\\here"}, "ec2": {"endpoint": ""}}
    assert guest.calls().get("svcprop") == 1


def test_no_config_group_means_nothing_set(tmp_path):
    guest = make_guest(tmp_path, "qemu")
    assert read_smf_settings(System(guest.root), METADATA_FMRI) == {}


def test_unknown_property_in_the_guest_is_a_config_error(tmp_path):
    guest = make_guest(tmp_path, "qemu")
    _set_properties(guest, {"config/timeouts_dhpc": ["astring", "5"]})
    with pytest.raises(ConfigError, match="config/timeouts_dhpc: unknown property"):
        read_smf_settings(System(guest.root), METADATA_FMRI)


def test_unknown_fmri_is_a_command_error(tmp_path):
    guest = make_guest(tmp_path, "qemu")
    with pytest.raises(CommandError, match="doesn't match"):
        read_smf_settings(System(guest.root), "svc:/system/nonesuch:default")


def test_smf_properties_win_over_the_toml_file_which_wins_over_defaults():
    from_file = parse('[timeouts]\ndhcp = 30\nfetch = 20\n[log]\nlevel = "warning"\n')
    values = merged(from_file.values, {"timeouts": {"dhcp": 5.0}, "network": {"skip": True}})
    assert values["timeouts"]["dhcp"] == 5.0          # SMF
    assert values["timeouts"]["fetch"] == 20.0        # TOML file
    assert values["log"]["level"] == "warning"        # TOML file
    assert values["network"]["skip"] is True          # SMF
    assert values["timeouts"]["command"] == SCHEMA["timeouts"]["command"][1]  # default
