"""The hardened sshd configuration (plugins/module_utils/_sshd.py)."""

import pytest

from ansible_collections.homelab.nixos.plugins.module_utils._sshd import (
    SshdError,
    nixos_openssh,
    render_sshd_config,
    sshd_settings,
)

# `ssh -Q` of OpenSSH 9.2p1 (Debian 12), abridged to what matters.
DEBIAN12 = {
    "kex": [
        "diffie-hellman-group1-sha1",
        "diffie-hellman-group14-sha1",
        "diffie-hellman-group14-sha256",
        "diffie-hellman-group16-sha512",
        "diffie-hellman-group18-sha512",
        "diffie-hellman-group-exchange-sha1",
        "diffie-hellman-group-exchange-sha256",
        "ecdh-sha2-nistp256",
        "ecdh-sha2-nistp384",
        "ecdh-sha2-nistp521",
        "curve25519-sha256",
        "curve25519-sha256@libssh.org",
        "sntrup761x25519-sha512@openssh.com",
    ],
    "cipher": [
        "3des-cbc",
        "aes128-cbc",
        "aes192-cbc",
        "aes256-cbc",
        "aes128-ctr",
        "aes192-ctr",
        "aes256-ctr",
        "aes128-gcm@openssh.com",
        "aes256-gcm@openssh.com",
        "chacha20-poly1305@openssh.com",
    ],
    "mac": [
        "hmac-sha1",
        "hmac-sha2-256",
        "hmac-sha2-512",
        "umac-128@openssh.com",
        "hmac-sha1-etm@openssh.com",
        "hmac-sha2-256-etm@openssh.com",
        "hmac-sha2-512-etm@openssh.com",
        "umac-64-etm@openssh.com",
        "umac-128-etm@openssh.com",
    ],
    "key-sig": [
        "ssh-ed25519",
        "ssh-ed25519-cert-v01@openssh.com",
        "sk-ssh-ed25519@openssh.com",
        "sk-ssh-ed25519-cert-v01@openssh.com",
        "ecdsa-sha2-nistp256",
        "ssh-rsa",
        "ssh-dss",
        "rsa-sha2-256",
        "rsa-sha2-512",
        "rsa-sha2-256-cert-v01@openssh.com",
        "rsa-sha2-512-cert-v01@openssh.com",
    ],
}


def _words(settings, key):
    return settings[key]


def test_modern_algorithms_only_and_in_order():
    settings = sshd_settings({}, DEBIAN12)
    assert settings["KexAlgorithms"] == [
        "sntrup761x25519-sha512@openssh.com",
        "curve25519-sha256",
        "curve25519-sha256@libssh.org",
        "diffie-hellman-group18-sha512",
        "diffie-hellman-group16-sha512",
    ]
    assert settings["Ciphers"][0] == "chacha20-poly1305@openssh.com"
    assert not any("cbc" in c for c in settings["Ciphers"])
    assert settings["MACs"] == [
        "hmac-sha2-512-etm@openssh.com",
        "hmac-sha2-256-etm@openssh.com",
        "umac-128-etm@openssh.com",
    ]
    for key in ("KexAlgorithms", "HostKeyAlgorithms", "PubkeyAcceptedAlgorithms", "MACs"):
        assert not any("nistp" in a or "sha1" in a or a in ("ssh-rsa", "ssh-dss") for a in settings[key]), key
    assert all(m.endswith("-etm@openssh.com") for m in settings["MACs"])
    assert settings["HostKey"] == ["/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_rsa_key"]


def test_newer_openssh_gets_post_quantum_kex_first():
    newer = dict(DEBIAN12, kex=[*DEBIAN12["kex"], "mlkem768x25519-sha256", "sntrup761x25519-sha512"])
    assert sshd_settings({}, newer)["KexAlgorithms"][:3] == [
        "mlkem768x25519-sha256",
        "sntrup761x25519-sha512",
        "sntrup761x25519-sha512@openssh.com",
    ]


def test_keys_only_and_no_forwarding_by_default():
    settings = sshd_settings({}, DEBIAN12)
    assert settings["PermitRootLogin"] == "no"
    assert settings["PasswordAuthentication"] == "no"
    assert settings["KbdInteractiveAuthentication"] == "no"
    assert settings["AuthenticationMethods"] == "publickey"
    assert (settings["MaxAuthTries"], settings["LoginGraceTime"]) == (3, 30)
    assert (settings["ClientAliveInterval"], settings["ClientAliveCountMax"]) == (300, 2)
    assert settings["AllowTcpForwarding"] == settings["AllowAgentForwarding"] == settings["X11Forwarding"] == "no"
    assert "AllowUsers" not in settings


def test_a_jump_host_may_forward():
    settings = sshd_settings({"tcp_forwarding": True}, DEBIAN12)
    assert settings["AllowTcpForwarding"] == settings["AllowStreamLocalForwarding"] == "yes"
    assert settings["AllowAgentForwarding"] == "no"


def test_restricted_sources_always_admit_tailscale():
    settings = sshd_settings({"allow_users": ["admin"], "allow_sources": ["192.168.1.0/24"]}, DEBIAN12)
    assert settings["AllowUsers"] == ["admin@192.168.1.0/24", "admin@100.64.0.0/10"]
    any_user = sshd_settings({"allow_sources": ["100.64.0.0/10", "10.0.0.0/8"]}, DEBIAN12)
    assert any_user["AllowUsers"] == ["*@100.64.0.0/10", "*@10.0.0.0/8"]
    users_only = sshd_settings({"allow_users": ["admin", "backup"]}, DEBIAN12)
    assert users_only["AllowUsers"] == ["admin", "backup"]


def test_every_problem_at_once():
    with pytest.raises(SshdError) as e:
        sshd_settings(
            {
                "port": 0,
                "max_auth_tries": "many",
                "allow_users": ["Bad User"],
                "max_startups": "lots",
                "tcp_forwarding": "yes",
                "extra_settings": {"PermitRootLogin": "yes", "lower": "x", "Banner": "a\nb"},
                "nosuch": 1,
            },
            DEBIAN12,
        )
    text = str(e.value)
    for fragment in (
        "unknown options: nosuch",
        "port must be an integer from 1 to 65535",
        "max_auth_tries must be an integer",
        "'Bad User', which is not a user name",
        "max_startups must look like 10:30:60",
        "tcp_forwarding must be true or false",
        "may not change PermitRootLogin",
        "'lower' is not an sshd_config keyword",
        "extra_settings.Banner must be a one-line",
    ):
        assert fragment in text
    assert len(e.value.problems) == 9


def test_an_old_openssh_without_modern_algorithms_is_refused():
    old = {
        "kex": ["diffie-hellman-group14-sha1"],
        "cipher": ["aes128-cbc"],
        "mac": ["hmac-sha1"],
        "key-sig": ["ssh-rsa"],
    }
    with pytest.raises(SshdError) as e:
        sshd_settings({}, old)
    assert "supports none of the modern key exchange algorithms" in str(e.value)
    assert len(e.value.problems) == 5


def test_preflight_without_a_host_assumes_a_current_openssh():
    assert sshd_settings({"allow_users": ["admin"]})["KexAlgorithms"][0] == "mlkem768x25519-sha256"


def test_the_file_has_every_keyword_once_and_host_keys_per_line():
    text = render_sshd_config(
        sshd_settings({"allow_users": ["admin"], "allow_sources": ["10.0.0.0/8"]}, DEBIAN12), header="# managed"
    )
    lines = text.splitlines()
    assert lines[0] == "# managed"
    keywords = [line.split(" ", 1)[0] for line in lines[1:]]
    assert keywords.count("HostKey") == 2
    assert len([k for k in keywords if k != "HostKey"]) == len({k for k in keywords if k != "HostKey"})
    assert "AllowUsers admin@10.0.0.0/8 admin@100.64.0.0/10" in lines
    assert "MACs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,umac-128-etm@openssh.com" in lines
    assert lines[-1] == "Subsystem sftp /usr/lib/openssh/sftp-server"
    assert "Include" not in text


def test_nixos_options_follow_nixpkgs_settings_types(known_options):
    options = nixos_openssh(sshd_settings({"allow_users": ["admin"], "allow_sources": ["10.0.0.0/8"]}, DEBIAN12))
    settings = options["settings"]
    assert options["ports"] == [22] and options["openFirewall"] is False
    assert [k["type"] for k in options["hostKeys"]] == ["ed25519", "rsa"]
    assert settings["Macs"][0] == "hmac-sha2-512-etm@openssh.com" and "MACs" not in settings
    assert settings["UseDns"] is False and settings["PasswordAuthentication"] is False
    assert settings["GatewayPorts"] == "no"  # nixpkgs types it as a string
    assert isinstance(settings["HostKeyAlgorithms"], str)  # lists only where nixpkgs' format allows them
    assert settings["AllowUsers"] == ["admin@10.0.0.0/8", "admin@100.64.0.0/10"]
    assert settings["MaxAuthTries"] == 3
    known_options({"services": {"openssh": options}})


def _backup_target(**extra):
    return sshd_settings(
        {
            "allow_users": ["admin"],
            "allow_sources": ["10.0.0.0/8"],
            "sftp_only_users": ["restic-p620", "restic-razer"],
            "sftp_chroot_directory": "/srv/restic/%u",
            "sftp_authorized_keys_file": "/srv/restic/keys/%u",
            **extra,
        },
        DEBIAN12,
    )


def test_sftp_only_accounts_are_admitted_from_the_same_sources_and_confined():
    settings = _backup_target()
    assert settings["AllowUsers"] == [
        f"{user}@{net}" for user in ("admin", "restic-p620", "restic-razer") for net in ("10.0.0.0/8", "100.64.0.0/10")
    ]
    lines = render_sshd_config(settings).splitlines()
    # The Match block is last: every keyword after it belongs to it.
    start = lines.index("Match User restic-p620,restic-razer")
    assert lines[start - 1].startswith("Subsystem sftp")
    assert lines[start + 1 :] == [
        "    ChrootDirectory /srv/restic/%u",
        "    ForceCommand internal-sftp",
        "    AuthorizedKeysFile /srv/restic/keys/%u",
        "    AllowTcpForwarding no",
        "    AllowAgentForwarding no",
        "    AllowStreamLocalForwarding no",
        "    X11Forwarding no",
        "    PermitTTY no",
    ]


def test_sftp_only_accounts_on_nixos_go_to_extra_config(known_options):
    options = nixos_openssh(_backup_target())
    assert "Match" not in options["settings"]
    block = options["extraConfig"].splitlines()
    assert block[:2] == ["Match User restic-p620,restic-razer", "    ChrootDirectory /srv/restic/%u"]
    known_options({"services": {"openssh": options}})


def test_no_sftp_only_accounts_no_match_block():
    settings = sshd_settings({"allow_users": ["admin"]}, DEBIAN12)
    assert "Match" not in settings and "Match" not in render_sshd_config(settings)
    assert "extraConfig" not in nixos_openssh(settings)


def test_bad_sftp_only_settings_are_refused():
    with pytest.raises(SshdError, match=r"sftp_only_users holds 'bad user'"):
        _backup_target(sftp_only_users=["bad user"])
    with pytest.raises(SshdError, match=r"sftp_chroot_directory must be absolute"):
        _backup_target(sftp_chroot_directory="srv/restic")
    with pytest.raises(SshdError, match=r"sftp_only_users must be a list"):
        _backup_target(sftp_only_users="restic-p620")
