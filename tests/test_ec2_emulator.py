"""The EC2 IMDS emulator as third-party clients see it: the token rules and the tree AWS
documents (EC2 User Guide: configuring-instance-metadata-service.md,
instancedata-data-retrieval.md, instancedata-data-categories.md), read by unmodified
clients: `ec2-metadata`, botocore's IMDS fetchers and cloud-init's EC2 helpers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
import requests
from test_ec2 import imds  # the emulator on loopback, with metadata overrides and options

from sim.emulators import ec2 as emulator

MAC = emulator.MAC
TTL = {"X-aws-ec2-metadata-token-ttl-seconds": "60"}
ROLE = "web-role"
# The listings as instancedata-data-retrieval.md shows them.
DOC_VERSIONS = """1.0 2007-01-19 2007-03-01 2007-08-29 2007-10-10 2007-12-15 2008-02-01
    2008-09-01 2009-04-04 2011-01-01 2011-05-01 2012-01-12 2014-02-25 2014-11-05 2015-10-20
    2016-04-19 2016-06-30 2016-09-02 2018-03-28 2018-08-17 2018-09-24 2019-10-01 2020-10-27
    2021-01-03 2021-03-23 latest""".split()
DOC_META_DATA = """ami-id ami-launch-index ami-manifest-path block-device-mapping/ events/
    hostname iam/ instance-action instance-id instance-life-cycle instance-type local-hostname
    local-ipv4 mac metrics/ network/ placement/ profile public-hostname public-ipv4
    public-keys/ reservation-id security-groups services/""".split()


def role_metadata() -> dict:
    """An IAM role, as iam-roles-for-amazon-ec2.md describes its two documents."""
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 6 * 3600))
    return {
        "meta-data/iam/info": {
            "Code": "Success", "LastUpdated": "2024-01-01T00:00:00Z",
            "InstanceProfileArn": f"arn:aws:iam::123456789012:instance-profile/{ROLE}",
            "InstanceProfileId": "AIPAEXAMPLEEXAMPLE000"},
        f"meta-data/iam/security-credentials/{ROLE}": {
            "Code": "Success", "LastUpdated": "2024-01-01T00:00:00Z", "Type": "AWS-HMAC",
            "AccessKeyId": "ASIAEXAMPLEROLEKEY00", "SecretAccessKey": "example-role-secret",
            "Token": "example-role-token", "Expiration": expires},
    }




def token(url: str) -> dict[str, str]:
    reply = requests.put(url + "/latest/api/token", headers=TTL, timeout=5)
    assert reply.status_code == 200
    return {"X-aws-ec2-metadata-token": reply.text}


def get(url: str, path: str, headers: dict[str, str]) -> requests.Response:
    return requests.get(url + path, headers=headers, timeout=5)


# ---- the token --------------------------------------------------------------------------

def test_a_token_put_through_a_proxy_is_refused():
    with imds() as service:
        url = service.server.url + "/latest/api/token"
        proxied = {**TTL, "X-Forwarded-For": "198.51.100.7"}
        assert requests.put(url, headers=proxied, timeout=5).status_code == 403
        assert requests.put(url, headers=TTL, timeout=5).status_code == 200
        assert service.tokens_issued == 1


@pytest.mark.parametrize("path", ["/latest/api/token/", "/2021-03-23/api/token",
                                  "/2009-04-04/api/token/"])
def test_a_token_is_only_given_at_latest_api_token(path):
    with imds() as service:
        assert requests.put(service.server.url + path, headers=TTL, timeout=5).status_code == 403
        assert service.tokens_issued == 0


def test_other_methods_are_405_with_allow():
    with imds() as service:
        url = service.server.url
        reply = requests.get(url + "/latest/api/token", timeout=5)
        assert reply.status_code == 405 and "PUT" in reply.headers["Allow"]
        reply = requests.put(url + "/latest/meta-data/", headers=TTL, timeout=5)
        assert reply.status_code == 405 and "GET" in reply.headers["Allow"]


# ---- the tree ---------------------------------------------------------------------------

def test_the_versions_are_the_documented_ones_and_each_serves_meta_data():
    with imds() as service:
        url, headers = service.server.url, token(service.server.url)
        assert get(url, "/", headers).text.split("\n") == DOC_VERSIONS
        for version in DOC_VERSIONS:
            reply = get(url, f"/{version}/meta-data/instance-id", headers)
            assert (version, reply.status_code, reply.text) == (
                version, 200, "i-0a1b2c3d4e5f60718")
            assert reply.headers["Content-Type"] == "text/plain"


def test_the_meta_data_index_lists_what_aws_documents():
    with imds() as service:
        url, headers = service.server.url, token(service.server.url)
        listing = get(url, "/latest/meta-data/", headers).text.split("\n")
        # No role attached: no iam/. identity-credentials/ is documented (2018-05-23) but
        # missing from the doc's sample listing.
        assert sorted(listing) == sorted(
            [e for e in DOC_META_DATA if e != "iam/"] + ["identity-credentials/"])
        for entry in listing:                      # every entry listed can be read
            assert get(url, f"/latest/meta-data/{entry}", headers).status_code == 200, entry
    with imds(role_metadata()) as service:
        url, headers = service.server.url, token(service.server.url)
        assert "iam/" in get(url, "/latest/meta-data/", headers).text.split("\n")
        assert get(url, "/latest/meta-data/iam/", headers).text == "info\nsecurity-credentials/"
        assert get(url, "/latest/meta-data/iam/security-credentials/", headers).text == ROLE


def test_a_dated_version_serves_the_tree_as_of_that_version():
    with imds(role_metadata()) as service:
        url, headers = service.server.url, token(service.server.url)
        old = get(url, "/2009-04-04/meta-data/", headers).text.split("\n")
        assert "instance-id" in old and "placement/" in old
        assert not {"events/", "iam/", "services/", "network/", "mac"} & set(old)
        assert get(url, "/2009-04-04/meta-data/events/maintenance/scheduled",
                   headers).status_code == 404
        assert get(url, "/2018-09-24/meta-data/events/maintenance/scheduled",
                   headers).text == "[]"
        assert get(url, "/1.0/", headers).text == "meta-data\nuser-data"   # no dynamic yet
        assert get(url, "/2021-03-23/", headers).text == "dynamic\nmeta-data\nuser-data"


def test_json_documents_are_printed_as_the_service_prints_them():
    with imds() as service:
        url, headers = service.server.url, token(service.server.url)
        text = get(url, "/latest/dynamic/instance-identity/document", headers).text
        assert text.startswith('{\n  "accountId" : "123456789012",\n  "architecture" : ')
        assert '"billingProducts" : null,' in text and text.endswith('"\n}')
        assert json.loads(text)["region"] == "us-east-1"
    assert emulator.aws_json({"a": [], "b": ["x", 1], "c": {}}) == \
        '{\n  "a" : [ ],\n  "b" : [ "x", 1 ],\n  "c" : { }\n}'


# ---- ec2-metadata (PyPI) ----------------------------------------------------------------

def test_the_ec2_metadata_client_reads_every_documented_item():
    ec2_metadata = pytest.importorskip("ec2_metadata")
    with imds(role_metadata()) as service:
        client = ec2_metadata.EC2Metadata()
        client.service_url = service.server.url + "/latest/"
        client.dynamic_url = client.service_url + "dynamic/"
        client.metadata_url = client.service_url + "meta-data/"
        client.userdata_url = client.service_url + "user-data/"
        assert (client.ami_id, client.ami_launch_index, client.ami_manifest_path) == (
            "ami-0f1e2d3c4b5a69788", 0, "(unknown)")
        assert (client.instance_action, client.instance_life_cycle) == ("none", "on-demand")
        assert (client.public_ipv4, client.reservation_id) == ("203.0.113.25",
                                                               "r-0a1b2c3d4e5f60718")
        assert (client.partition, client.domain, client.security_groups) == (
            "aws", "amazonaws.com", ["default"])
        assert client.availability_zone_id == "use1-az6" and client.account_id == "123456789012"
        assert client.instance_profile_name == ROLE
        assert client.iam_security_credentials["AccessKeyId"] == "ASIAEXAMPLEROLEKEY00"
        nic = client.network_interfaces[MAC]
        assert nic.ipv4_associations == {"203.0.113.25": ["10.0.1.23"]}
        assert (nic.owner_id, nic.security_group_ids) == ("123456789012",
                                                          ["sg-0a1b2c3d4e5f60718"])


# ---- botocore ---------------------------------------------------------------------------

@pytest.fixture
def no_proxy_env(monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("mode", ["required", "optional", "v1-only"])
def test_botocore_fetchers_read_role_credentials_and_region(no_proxy_env, mode):
    utils = pytest.importorskip("botocore.utils")
    with imds(role_metadata(), imds=mode) as service:
        options = {"base_url": service.server.url, "timeout": 5, "num_attempts": 1,
                   "env": {}}
        credentials = utils.InstanceMetadataFetcher(**options).retrieve_iam_role_credentials()
        region = utils.InstanceMetadataRegionFetcher(**options).retrieve_region()
        issued = service.tokens_issued
    assert credentials["role_name"] == ROLE
    assert (credentials["access_key"], credentials["secret_key"], credentials["token"]) == (
        "ASIAEXAMPLEROLEKEY00", "example-role-secret", "example-role-token")
    assert region == "us-east-1"   # from placement/availability-zone/ (trailing slash)
    assert issued == (0 if mode == "v1-only" else 2)


def test_botocore_finds_no_role_and_a_disabled_service(no_proxy_env):
    utils = pytest.importorskip("botocore.utils")
    for metadata, options in (({}, {}), ({}, {"imds": "disabled"})):
        with imds(metadata, **options) as service:
            fetcher = utils.InstanceMetadataFetcher(base_url=service.server.url, timeout=5,
                                                    num_attempts=1, env={})
            assert fetcher.retrieve_iam_role_credentials() == {}


# ---- cloud-init (Debian's package) ------------------------------------------------------

CLOUD_INIT_EC2 = textwrap.dedent("""
    import json, sys
    from cloudinit import url_helper
    from cloudinit.sources.helpers import ec2
    base, version = sys.argv[1], sys.argv[2]
    reply = url_helper.readurl(base + "/latest/api/token", request_method="PUT",
                               headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"},
                               timeout=5, retries=0)
    headers = {"X-aws-ec2-metadata-token": reply.contents.decode()}
    options = dict(api_version=version, metadata_address=base, timeout=5, retries=0,
                   headers_cb=lambda url: headers)
    print(json.dumps({
        "meta-data": ec2.get_instance_metadata(**options),
        "identity": ec2.get_instance_identity(**options),
        "user-data": ec2.get_instance_userdata(**options).decode(),
    }))
""")


def _python_with_cloud_init() -> str | None:
    for python in (sys.executable, "/usr/bin/python3"):
        if os.path.exists(python) and subprocess.run(
                [python, "-c", "import cloudinit.sources.helpers.ec2"],
                capture_output=True, timeout=30).returncode == 0:
            return python
    return None


@pytest.mark.parametrize("version", ["2021-03-23", "2009-04-04"])
def test_cloud_init_reads_meta_data_and_user_data(tmp_path, version):
    python = _python_with_cloud_init()
    if python is None:
        pytest.skip("cloud-init is not importable "
                    "(Debian: apt-get install --no-install-recommends cloud-init)")
    script = tmp_path / "cloud_init_ec2.py"
    script.write_text(CLOUD_INIT_EC2)
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    with imds() as service:
        result = subprocess.run([python, str(script), service.server.url, version],
                                capture_output=True, text=True, timeout=120, env=env)
        statuses = {status for _, _, status in service.server.log}
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout)
    md = out["meta-data"]   # {} when any listed entry failed to materialize
    assert md["instance-id"] == "i-0a1b2c3d4e5f60718" and md["local-ipv4"] == "10.0.1.23"
    assert md["public-keys"] == {"admin": emulator.default_metadata()[
        "meta-data/public-keys"]["admin"], "deploy": emulator.default_metadata()[
        "meta-data/public-keys"]["deploy"]}
    assert md["placement"]["availability-zone"] == "us-east-1a"
    assert out["identity"]["document"]["instanceId"] == "i-0a1b2c3d4e5f60718"
    assert out["user-data"].startswith("#!/bin/sh")
    assert statuses == {200}
    if version == "2021-03-23":
        assert md["events"]["maintenance"]["scheduled"] == "[]"
        assert md["network"]["interfaces"]["macs"][MAC]["local-ipv4s"] == "10.0.1.23"
        assert md["identity-credentials"]["ec2"]["info"]["AccountId"] == "123456789012"
    else:
        assert "events" not in md and "network" not in md and "services" not in md
