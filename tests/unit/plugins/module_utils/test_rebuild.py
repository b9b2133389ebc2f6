"""Unit tests of the nixos_rebuild logic against a test double of a NixOS host.

``FakeNixosRebuild`` stands in for nixos-rebuild and the other NixOS tools, which cannot exist here. The SSH
banner probe and the health URLs are tested against real sockets and a real HTTP server on 127.0.0.1.
"""

import errno
import hashlib
import http.server
import os
import shlex
import signal
import threading
import time

import pytest
from fake_tcp_server import FakeTcpServer, closed_port

from ansible_collections.homelab.nixos.plugins.module_utils._rebuild import (
    NixosRebuild,
    RebuildError,
    RebuildInputError,
    SystemPaths,
    error_summary,
    parse_generation,
    pin_binary,
    redact,
    ssh_banner,
    store_name,
    tail,
    validate_params,
)

NIXOS_REBUILD = "/run/current-system/sw/bin/nixos-rebuild"
SSH = ["/usr/bin/ssh", "-o", "BatchMode=yes"]
KEEPALIVE = ["-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"]
FLAKE = "/etc/nixos#p620"
PACKAGES = {
    "alpha": ["glibc-2.39", "openssh-9.7p1"],
    "beta": ["glibc-2.39", "openssh-9.8p1", "nginx-1.26.2"],
    "gamma": ["glibc-2.40", "openssh-9.8p1"],
}


def _hash(name):
    return hashlib.sha256(name.encode()).hexdigest()[:32]


class FakeNixosRebuild:
    """Test double; proves the module's flow, never that NixOS works.

    Simulates a NixOS host inside a tmp directory: a store with one directory per system, the system profile
    with its ``system-N-link`` generations, ``/run/current-system`` and ``/run/booted-system``. Called like
    ``AnsibleModule.run_command``, it answers nixos-rebuild, readlink, nix-env, switch-to-configuration,
    nix store diff-closures, nix-store -q --requisites, cat of the hostname, ssh (running the remote command on
    the same simulated host), sudo, systemd-run, timeout and the health commands of ``self.health``.

    Like the real nixos-rebuild it prefers /etc/nixos/flake.nix (``self.etc_flake``) unless ``--no-flake`` is
    given, takes a flake's attribute from the hostname of ``--target-host`` (or of this machine,
    ``self.local_hostname``) when the reference has no ``#``, leaves ``./result`` behind for build and for classic
    test and dry-activate, and with ``--build-host`` makes no ``./result`` but prints the built path last
    (as nixos-rebuild-ng does).
    """

    def __init__(self, root):
        self.root = str(root)
        self.store = os.path.join(self.root, "nix", "store")
        self.profiles = os.path.join(self.root, "nix", "var", "nix", "profiles")
        run = os.path.join(self.root, "run")
        for directory in (self.store, self.profiles, run):
            os.makedirs(directory)
        self.paths = SystemPaths(
            system_profile=os.path.join(self.profiles, "system"),
            current_system=os.path.join(run, "current-system"),
            booted_system=os.path.join(run, "booted-system"),
            store=self.store,
        )
        self.calls = []
        self.config = "alpha"  # the system the configuration evaluates to
        self.fail = None  # (rc, stderr) of a failing nixos-rebuild switch/boot/test/build
        self.fail_after_activation = False  # ... that fails only after activating (a unit did not start)
        self.noop = False  # nixos-rebuild exits 0 without changing anything
        self.rollback_fail = None  # (rc, stderr) of nixos-rebuild switch --rollback
        self.rollback_noop = False
        self.nix_env_rc = 0
        self.stc_rc = 0  # switch-to-configuration
        self.ssh_up = True
        self.ssh_probe_ok = True  # fresh `ssh ... true` connections
        self.ssh_down_after_activation = False
        self.health = {}  # command name -> rc, or a list of rcs used one per call (the last one sticks)
        self.diff_closures_ok = True
        self.requisites_ok = True
        self.sighup_during_rebuild = []
        self.sudo_commands = []
        self.build_dirs = []
        self.result_dirs = []  # where a ./result link was left
        self.etc_flake = None  # system name /etc/nixos/flake.nix evaluates to; None: no such file
        self.hostname = "p620"  # the simulated host's /proc/sys/kernel/hostname
        self.local_hostname = "controller"  # where nixos-rebuild runs, without --target-host
        self.attrs = None  # flake attribute -> system name; None: every attribute evaluates to self.config
        self.build_host_prints_path = True  # nixos-rebuild-ng; False: an older nixos-rebuild
        self.missing_on_rollback = False  # nixos-rebuild is gone when the rollback runs it
        self.systemd_run_commands = []
        initial = self.system("alpha")
        self._set_profile(initial)
        self._link(self.paths.current_system, initial)
        self._link(self.paths.booted_system, initial)

    # -- the simulated host ----------------------------------------------

    def system(self, name):
        path = os.path.join(self.store, "%s-nixos-system-p620-%s" % (_hash(name), name))
        os.makedirs(os.path.join(path, "bin"), exist_ok=True)
        return path

    def package(self, name):
        return os.path.join(self.store, "%s-%s" % (_hash(name), name))

    @staticmethod
    def _link(link, target):
        tmp = link + ".tmp"
        os.symlink(target, tmp)
        os.replace(tmp, link)

    def generations(self):
        numbers = []
        for entry in os.listdir(self.profiles):
            number = parse_generation(entry, self.paths.system_profile)
            if number is not None:
                numbers.append(number)
        return sorted(numbers)

    def _gen_link(self, number):
        return os.path.join(self.profiles, "system-%d-link" % number)

    def _set_profile(self, path):
        """nix-env --set: a new generation, unless the last one already is ``path``."""
        numbers = self.generations()
        if numbers and os.path.realpath(self._gen_link(numbers[-1])) == path:
            number = numbers[-1]
        else:
            number = (numbers[-1] if numbers else 0) + 1
            os.symlink(path, self._gen_link(number))
        self._link(self.paths.system_profile, "system-%d-link" % number)

    @property
    def current(self):
        return os.path.realpath(self.paths.current_system)

    @property
    def profile(self):
        return os.path.realpath(self.paths.system_profile)

    @property
    def generation(self):
        return parse_generation(os.readlink(self.paths.system_profile))

    def closure(self, system):
        name = system.rsplit("-", 1)[-1]
        return [system] + [self.package(p) for p in PACKAGES[name]]

    def commands(self, name):
        """The calls whose program (after ssh/timeout/sudo/env) is ``name``."""
        return [call for call in self.calls if os.path.basename(call[0]) == name]

    # -- run_command -----------------------------------------------------

    def __call__(self, args, environ_update=None, check_rc=False, cwd=None, **kwargs):
        assert isinstance(args, list), "commands must be argument lists"
        assert environ_update == {"LC_ALL": "C"}
        assert check_rc is False
        return self.dispatch(list(args), cwd)

    def dispatch(self, args, cwd=None):
        self.calls.append(args)
        program = os.path.basename(args[0])
        if program == "timeout":
            return self.dispatch(args[4:], cwd)
        if program == "ssh":
            return self._ssh(args)
        if program == "sudo":
            assert args[1:3] == ["-n", "--"], "sudo must never prompt"
            self.sudo_commands.append(args[3:])
            return self.dispatch(args[3:], cwd)
        if program == "systemd-run":
            assert args[1:5] == ["--wait", "--collect", "--quiet", "--"]
            self.systemd_run_commands.append(args[5:])
            return self.dispatch(args[5:], cwd)
        if program == "cat" and args[1:] == ["/proc/sys/kernel/hostname"]:
            return 0, self.hostname + "\n", ""
        if program == "env":
            assert args[1] == "LC_ALL=C"
            return self.dispatch(args[2:], cwd)
        if program == "nixos-rebuild":
            return self._nixos_rebuild(args, cwd)
        if program == "readlink":
            if args[1] == "-f":
                return 0, "".join(os.path.realpath(p) + "\n" for p in args[2:]), ""
            return 0, os.readlink(args[1]) + "\n", ""
        if program == "nix-env":
            assert args[1:4] == ["--profile", self.paths.system_profile, "--set"]
            if self.nix_env_rc:
                return self.nix_env_rc, "", "error: opening lock file: Permission denied"
            self._set_profile(args[4])
            return 0, "", ""
        if program == "switch-to-configuration":
            if self.stc_rc:
                return self.stc_rc, "", "error: switch-to-configuration: activation script failed"
            self._link(self.paths.current_system, os.path.dirname(os.path.dirname(args[0])))
            return 0, "", "activating the configuration...\n"
        if program == "nix":
            return self._diff_closures(args)
        if program == "nix-store":
            assert args[1:3] == ["-q", "--requisites"]
            if not self.requisites_ok:
                return 1, "", "error: path '%s' is not valid" % args[3]
            return 0, "".join(p + "\n" for p in self.closure(args[3])), ""
        if program in self.health:
            rcs = self.health[program]
            if isinstance(rcs, list):
                rc = rcs.pop(0) if len(rcs) > 1 else rcs[0]
            else:
                rc = rcs
            return rc, "", "" if rc == 0 else "%s: unhealthy" % program
        raise AssertionError("unexpected command %r" % (args,))

    def _ssh(self, args):
        i = 1
        while args[i].startswith("-"):
            i += 2 if args[i] in ("-o", "-p", "-i", "-l", "-F") else 1
        remote = args[i + 1 :]
        if not self.ssh_up:
            return 255, "", "ssh: connect to host %s port 22: Connection refused" % args[i]
        if remote == ["true"]:
            if self.ssh_probe_ok:
                return 0, "", ""
            return 255, "", "kex_exchange_identification: read: Connection reset by peer"
        assert len(remote) == 1, "the remote command must be one quoted string"
        return self.dispatch(shlex.split(remote[0]))

    def _evaluate(self, args):
        """The system name the configuration of a nixos-rebuild call evaluates to, or an error message."""
        if "--flake" in args:
            ref = args[args.index("--flake") + 1]
        elif self.etc_flake is not None and "--no-flake" not in args:
            return self.etc_flake  # nixos-rebuild prefers /etc/nixos/flake.nix, whatever -I nixos-config says
        else:
            return self.config
        if "#" in ref:
            attr = ref.split("#", 1)[1]
        elif "--target-host" in args:
            attr = self.hostname
        else:
            attr = self.local_hostname
        if self.attrs is None:
            return self.config
        if attr not in self.attrs:
            return "error: flake does not provide attribute 'nixosConfigurations.%s'" % attr
        return self.attrs[attr]

    def _nixos_rebuild(self, args, cwd):
        self.sighup_during_rebuild.append(signal.getsignal(signal.SIGHUP))
        action = args[1]
        if "--target-host" in args and not self.ssh_up:
            return 1, "", "ssh: connect to host %s port 22: Connection refused" % args[args.index("--target-host") + 1]
        if "--rollback" in args:
            assert action == "switch"
            if self.missing_on_rollback:
                raise FileNotFoundError(errno.ENOENT, "No such file or directory", args[0])
            if self.rollback_fail:
                return self.rollback_fail[0], "", self.rollback_fail[1]
            if not self.rollback_noop:
                numbers = [n for n in self.generations() if n < self.generation]
                self._link(self.paths.system_profile, "system-%d-link" % numbers[-1])
                self._link(self.paths.current_system, self.profile)
            return 0, "", "switching profile from version %d\n" % self.generation
        name = self._evaluate(args)
        if name.startswith("error:"):
            return 1, "", name
        classic = "--flake" not in args and (self.etc_flake is None or "--no-flake" in args)
        if action in ("dry-build", "dry-activate"):
            if action == "dry-activate" and classic:
                self._leave_result(cwd, self.system(name))
            return 0, "would activate %s\n" % name, ""
        if self.fail and not self.fail_after_activation:
            return self.fail[0], "", "building the system configuration...\n" + self.fail[1]
        if self.noop:
            return 0, "activating the configuration...\nswitching to generation 99\n", ""
        system = self.system(name)
        if action == "build":
            self.build_dirs.append(cwd)
            if "--build-host" in args:  # no ./result; nixos-rebuild-ng prints the path last
                out = "copying path '%s' from 'ssh://builder'...\n" % system
                return 0, out + (system + "\n" if self.build_host_prints_path else ""), ""
            self._leave_result(cwd, system)
            return 0, "", "building the system configuration...\n"
        if action == "test" and classic:
            self._leave_result(cwd, system)
        if action in ("switch", "boot"):
            self._set_profile(system)
        if action in ("switch", "test"):
            self._link(self.paths.current_system, system)
            if self.ssh_down_after_activation:
                self.ssh_up = False
        if self.fail:
            return self.fail[0], "", self.fail[1]
        return 0, "", "activating the configuration...\n"

    def _leave_result(self, cwd, system):
        where = cwd or os.getcwd()
        self.result_dirs.append(where)
        self._link(os.path.join(where, "result"), system)

    def _diff_closures(self, args):
        assert args[1:6] == ["--extra-experimental-features", "nix-command", "store", "diff-closures", args[5]]
        if not self.diff_closures_ok:
            return 1, "", "error: experimental Nix feature 'nix-command' is disabled"
        old, new = args[5], args[6]
        old_pkgs = {store_name(p) for p in self.closure(old)[1:]}
        new_pkgs = {store_name(p) for p in self.closure(new)[1:]}
        lines = ["%s: removed" % p for p in sorted(old_pkgs - new_pkgs)]
        lines += ["%s: added" % p for p in sorted(new_pkgs - old_pkgs)]
        return 0, "".join(line + "\n" for line in lines), ""


class FakeClock:
    """Test double for time.monotonic/time.sleep: sleeping only moves the clock."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds


class BannerServer(FakeTcpServer):
    """A FakeTcpServer that greets every connection with ``banner``; test_nixos_rebuild.py uses it too."""

    def __init__(self, banner=b"SSH-2.0-test\r\n"):
        super().__init__(banner)


@pytest.fixture
def fake(tmp_path):
    return FakeNixosRebuild(tmp_path / "host")


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def sshd():
    with BannerServer() as server:
        yield server


@pytest.fixture
def make(fake, clock, tmp_path, sshd):
    """``make(**params)``: a NixosRebuild on the fake host; local confirmation talks to the banner server."""
    workdir = tmp_path / "tmp"
    workdir.mkdir()

    def build(runner=None, binaries=None, environ=None, **params):
        params.setdefault("confirm_ssh_port", sshd.port)
        bins = {"nixos-rebuild": NIXOS_REBUILD, "ssh": "/usr/bin/ssh"}
        bins.update(binaries or {})
        return NixosRebuild(
            params,
            runner or fake,
            paths=fake.paths,
            clock=clock,
            sleep=clock.sleep,
            binaries=bins,
            tmpdir=str(workdir),
            environ=environ or {},
        )

    return build


def _fail(rebuild, **kwargs):
    with pytest.raises(RebuildError) as exc:
        rebuild.run(**kwargs)
    return str(exc.value), exc.value.result


# -- switch ----------------------------------------------------------------


def test_switch_to_a_new_system_changes_and_reports_generations(fake, make, sshd):
    alpha, beta = fake.system("alpha"), fake.system("beta")
    fake.config = "beta"
    before_handler = signal.getsignal(signal.SIGHUP)
    result = make(flake=FLAKE).run()
    assert result["changed"] is True
    assert (result["old_system"], result["new_system"]) == (alpha, beta)
    assert (result["old_generation"], result["new_generation"]) == (1, 2)
    assert result["confirmed"] is True and result["rolled_back"] is False
    assert result["cmd"] == [NIXOS_REBUILD, "switch", "--flake", FLAKE]
    assert (fake.current, fake.profile, fake.generation) == (beta, beta, 2)
    assert sshd.connections >= 1  # the fresh-connection probe really connected
    # SIGHUP was ignored while nixos-rebuild ran, and is restored afterwards.
    assert fake.sighup_during_rebuild == [signal.SIG_IGN]
    assert signal.getsignal(signal.SIGHUP) == before_handler
    assert "diff" not in result


def test_switch_with_nothing_new_is_not_a_change(fake, make, sshd):
    result = make(flake=FLAKE).run()
    assert result["changed"] is False
    assert result["old_system"] == result["new_system"] == fake.system("alpha")
    assert result["old_generation"] == result["new_generation"] == 1
    assert result["confirmed"] is False  # nothing was activated, nothing to confirm
    assert sshd.connections == 0


def test_switch_exit_0_without_a_new_system_is_not_a_change(fake, make):
    fake.config = "beta"
    fake.noop = True  # claims to switch to generation 99, changes nothing
    result = make(flake=FLAKE).run()
    assert result["rc"] == 0 and "generation 99" in result["stdout"]
    assert result["changed"] is False
    assert result["new_system"] == fake.system("alpha") and result["new_generation"] == 1


def test_switch_that_fails_reports_stderr_and_no_change(fake, make):
    fake.config = "beta"
    fake.fail = (1, "error: flake 'path:/etc/nixos' does not provide attribute 'nixosConfigurations.p620'")
    msg, result = _fail(make(flake=FLAKE))
    assert msg == (
        "nixos-rebuild switch failed (rc 1): "
        "error: flake 'path:/etc/nixos' does not provide attribute 'nixosConfigurations.p620'"
    )
    assert result["changed"] is False and result["rc"] == 1
    assert "does not provide attribute" in result["stderr"]
    assert "rollback" not in result
    assert (fake.current, fake.generation) == (fake.system("alpha"), 1)
    assert not fake.commands("switch-to-configuration")


def test_failure_after_activation_is_reported_with_the_new_path_and_rolled_back(fake, make):
    fake.config = "beta"
    fake.fail = (4, "warning: the following units failed: nginx.service")
    fake.fail_after_activation = True
    msg, result = _fail(make(flake=FLAKE))
    beta, alpha = fake.system("beta"), fake.system("alpha")
    assert msg.startswith("nixos-rebuild switch failed (rc 4): warning: the following units failed: nginx.service")
    assert "the running system changed to %s" % beta in msg
    assert msg.endswith("rolled back to generation 1 (%s)" % alpha)
    assert result["changed"] is True and result["rolled_back"] is True
    assert result["new_system"] == beta and result["new_generation"] == 2
    assert result["rollback"][0]["cmd"] == [NIXOS_REBUILD, "switch", "--rollback", "--fast", "--flake", FLAKE]
    assert (fake.current, fake.generation) == (alpha, 1)


def test_failing_health_command_rolls_back(fake, make, clock):
    fake.config = "beta"
    fake.health["systemctl"] = 3
    rebuild = make(flake=FLAKE, extra_args=["--show-trace"], health_commands=[["systemctl", "is-active", "nginx"]])
    msg, result = _fail(rebuild)
    alpha, beta = fake.system("alpha"), fake.system("beta")
    assert msg == (
        "confirmation of %s failed: health command systemctl is-active nginx exited 3: systemctl: unhealthy "
        "(still failing after 60s); rolled back to generation 1 (%s)" % (beta, alpha)
    )
    assert "\n" not in msg
    assert result["rolled_back"] is True and result["rollback_generation"] == 1 and result["changed"] is True
    assert result["confirmed"] is False
    # Retried until the deadline, then rolled back with the same flake args (and without extra_args).
    assert 1059 < clock.now <= 1060 and len(fake.commands("systemctl")) > 20
    assert fake.commands("nixos-rebuild")[-1] == [NIXOS_REBUILD, "switch", "--rollback", "--fast", "--flake", FLAKE]
    assert (fake.current, fake.profile, fake.generation) == (alpha, alpha, 1)
    assert fake.sighup_during_rebuild == [signal.SIG_IGN, signal.SIG_IGN]


def test_health_command_is_retried_until_it_passes(fake, make, clock):
    fake.config = "beta"
    fake.health["curl"] = [7, 7, 0]
    result = make(flake=FLAKE, health_commands=["curl -fsS http://127.0.0.1/healthz"]).run()
    assert result["changed"] is True and result["confirmed"] is True
    assert clock.sleeps == [2.0, 2.0]
    assert fake.commands("curl") == [["curl", "-fsS", "http://127.0.0.1/healthz"]] * 3


def test_closed_ssh_port_fails_confirmation_and_rolls_back(fake, make):
    fake.config = "beta"
    port = closed_port()
    msg, result = _fail(make(flake=FLAKE, confirm_ssh_port=port, confirm_timeout=10))
    assert msg.startswith(
        "confirmation of %s failed: fresh SSH connection to 127.0.0.1:%d: " % (fake.system("beta"), port)
    )
    assert "refused" in msg.lower()
    assert "(still failing after 10s); rolled back to generation 1" in msg
    assert result["rolled_back"] is True and fake.current == fake.system("alpha")


def test_rollback_falls_back_to_nix_env_and_switch_to_configuration(fake, make):
    fake.config = "beta"
    fake.health["false"] = 1
    fake.rollback_noop = True  # nixos-rebuild switch --rollback exits 0 but changes nothing
    msg, result = _fail(make(flake=FLAKE, health_commands=[["false"]], confirm_timeout=3))
    alpha = fake.system("alpha")
    assert [step["cmd"] for step in result["rollback"]] == [
        [NIXOS_REBUILD, "switch", "--rollback", "--fast", "--flake", FLAKE],
        ["nix-env", "--profile", fake.paths.system_profile, "--set", alpha],
        [os.path.join(alpha, "bin", "switch-to-configuration"), "switch"],
    ]
    # nix-env --set made a new generation 3 pointing at the old system.
    assert msg.endswith("rolled back to generation 3 (%s)" % alpha)
    assert result["rolled_back"] is True and result["rollback_generation"] == 3
    assert (fake.current, fake.profile, fake.generation) == (alpha, alpha, 3)


def test_failed_rollback_reports_both_reasons(fake, make):
    fake.config = "beta"
    fake.health["false"] = 1
    fake.rollback_fail = (1, "error: cannot connect to the daemon")
    fake.stc_rc = 1
    msg, result = _fail(make(flake=FLAKE, health_commands=[["false"]], confirm_timeout=3))
    alpha, beta = fake.system("alpha"), fake.system("beta")
    assert msg.startswith("confirmation of %s failed: health command false exited 1: false: unhealthy" % beta)
    assert "; rollback to %s failed too: " % alpha in msg
    assert "nixos-rebuild switch --rollback (rc 1): error: cannot connect to the daemon" in msg
    assert "switch-to-configuration switch (rc 1): error: switch-to-configuration: activation script failed" in msg
    assert "\n" not in msg
    assert result["rollback_failed"] is True and result["rolled_back"] is False
    assert len(result["rollback"]) == 3
    assert fake.current == beta


def test_rollback_disabled_leaves_the_new_system(fake, make):
    fake.config = "beta"
    fake.health["false"] = 1
    msg, result = _fail(make(flake=FLAKE, health_commands=[["false"]], confirm_timeout=2, rollback=False))
    assert msg.endswith("; rollback=false, so the system stays at %s" % fake.system("beta"))
    assert result["rolled_back"] is False and "rollback" not in result
    assert fake.current == fake.system("beta")
    assert len(fake.commands("nixos-rebuild")) == 1


def test_test_action_rolls_back_with_switch_to_configuration_test(fake, make):
    fake.config = "beta"
    fake.health["false"] = 1
    msg, result = _fail(make(action="test", flake=FLAKE, health_commands=[["false"]], confirm_timeout=2))
    alpha = fake.system("alpha")
    assert [step["cmd"] for step in result["rollback"]] == [
        [os.path.join(alpha, "bin", "switch-to-configuration"), "test"]
    ]
    assert msg.endswith("rolled back to generation 1 (%s)" % alpha)
    assert (fake.current, fake.generation) == (alpha, 1)  # test never touched the profile


def test_confirm_false_skips_confirmation(fake, make, sshd):
    fake.config = "beta"
    result = make(flake=FLAKE, confirm=False).run()
    assert result["changed"] is True and result["confirmed"] is False
    assert sshd.connections == 0


def test_not_nixos_is_reported(fake, make):
    os.unlink(fake.paths.current_system)
    msg, _result = _fail(make(flake=FLAKE))
    assert msg == "%s does not exist: not a NixOS system" % fake.paths.current_system
    assert fake.calls == []


def test_missing_binary_during_rollback_still_falls_back_to_nix_env_and_switch_to_configuration(fake, make):
    fake.config = "beta"
    fake.health["false"] = 1
    fake.missing_on_rollback = True  # starting nixos-rebuild raises FileNotFoundError, as run_command would
    msg, result = _fail(make(flake=FLAKE, health_commands=[["false"]], confirm_timeout=2))
    alpha = fake.system("alpha")
    steps = result["rollback"]
    assert steps[0]["rc"] == 127 and "No such file or directory" in steps[0]["stderr"]
    assert [step["cmd"][0] for step in steps[1:]] == ["nix-env", os.path.join(alpha, "bin", "switch-to-configuration")]
    assert msg.endswith("rolled back to generation 3 (%s)" % alpha)
    assert result["rolled_back"] is True and fake.current == alpha


@pytest.mark.parametrize("action", ["switch", "test"])
def test_use_remote_sudo_without_target_host_runs_the_own_rollback_commands_with_sudo(fake, make, action):
    fake.config = "beta"
    fake.health["false"] = 1
    fake.rollback_noop = True
    params = dict(action=action, flake=FLAKE, use_remote_sudo=True, health_commands=[["false"]], confirm_timeout=2)
    _msg, result = _fail(make(**params))
    alpha = fake.system("alpha")
    switch = [os.path.join(alpha, "bin", "switch-to-configuration"), action]
    cmds = [step["cmd"] for step in result["rollback"]]
    if action == "switch":
        assert cmds == [
            [NIXOS_REBUILD, "switch", "--rollback", "--fast", "--flake", FLAKE, "--use-remote-sudo"],
            ["sudo", "-n", "--", "nix-env", "--profile", fake.paths.system_profile, "--set", alpha],
            ["sudo", "-n", "--", *switch],
        ]
    else:
        assert cmds == [["sudo", "-n", "--", *switch]]
    assert fake.sudo_commands[-1] == switch and not fake.systemd_run_commands  # no systemd-run locally
    assert result["rolled_back"] is True and fake.current == alpha


# -- boot, build, check mode, dry-activate -------------------------------


def test_boot_compares_the_profile(fake, make, sshd):
    fake.config = "beta"
    alpha, beta = fake.system("alpha"), fake.system("beta")
    result = make(action="boot", flake=FLAKE).run()
    assert result["changed"] is True
    assert (result["old_system"], result["new_system"]) == (alpha, beta)
    assert (result["old_generation"], result["new_generation"]) == (1, 2)
    assert fake.current == alpha and fake.profile == beta  # active only after a reboot
    assert sshd.connections == 0 and result["confirmed"] is False
    again = make(action="boot", flake=FLAKE).run()
    assert again["changed"] is False and again["new_generation"] == 2


def test_build_reports_would_change_and_leaves_no_result_link(fake, make, tmp_path):
    fake.config = "beta"
    result = make(action="build", flake=FLAKE).run()
    assert result["changed"] is False and result["would_change"] is True
    assert result["built_system"] == result["new_system"] == fake.system("beta")
    assert result["cmd"] == [NIXOS_REBUILD, "build", "--flake", FLAKE]
    assert (fake.current, fake.generation) == (fake.system("alpha"), 1)
    (build_dir,) = fake.build_dirs
    assert os.path.dirname(build_dir) == str(tmp_path / "tmp") and not os.path.exists(build_dir)
    assert os.listdir(str(tmp_path / "tmp")) == []
    fake.config = "alpha"
    assert make(action="build", flake=FLAKE).run()["would_change"] is False


def test_build_failure(fake, make):
    fake.fail = (1, "error: undefined variable 'nginxx'")
    msg, result = _fail(make(action="build", flake=FLAKE))
    assert msg == "nixos-rebuild build failed (rc 1): error: undefined variable 'nginxx'"
    assert result["changed"] is False


@pytest.mark.parametrize("action", ["switch", "boot", "test"])
def test_check_mode_builds_and_activates_nothing(fake, make, sshd, action):
    fake.config = "beta"
    result = make(action=action, flake=FLAKE).run(check_mode=True)
    assert result["changed"] is True and result["would_change"] is True
    assert result["new_system"] == result["built_system"] == fake.system("beta")
    assert [call[1] for call in fake.commands("nixos-rebuild")] == ["build"]
    assert (fake.current, fake.profile, fake.generation) == (fake.system("alpha"), fake.system("alpha"), 1)
    assert sshd.connections == 0


def test_check_mode_without_a_new_system(fake, make):
    result = make(flake=FLAKE).run(check_mode=True)
    assert result["changed"] is False and result["new_generation"] == 1


def test_check_mode_boot_compares_the_profile_and_switch_both(fake, make):
    fake.config = "beta"
    make(action="boot", flake=FLAKE).run()  # profile: beta, running: alpha
    assert make(action="boot", flake=FLAKE).run(check_mode=True)["changed"] is False
    assert make(action="switch", flake=FLAKE).run(check_mode=True)["changed"] is True
    assert make(action="test", flake=FLAKE).run(check_mode=True)["changed"] is True


def test_dry_activate_never_changes(fake, make):
    fake.config = "beta"
    result = make(action="dry-activate", flake=FLAKE).run()
    assert result == dict(
        changed=False,
        action="dry-activate",
        cmd=[NIXOS_REBUILD, "dry-activate", "--flake", FLAKE],
        rc=0,
        stdout="would activate beta\n",
        stderr="",
    )
    assert fake.current == fake.system("alpha")


def test_dry_build_failure(fake, make):
    def runner(args, **kwargs):
        return 1, "", "error: getting status of '/etc/nixos/flake.nix': No such file or directory"

    msg, result = _fail(make(action="dry-build", flake=FLAKE, runner=runner))
    assert msg.startswith("nixos-rebuild dry-build failed (rc 1): error: getting status")
    assert result["changed"] is False


@pytest.mark.parametrize("action", ["switch", "boot", "test"])
def test_check_mode_with_build_host_takes_the_printed_path(fake, make, action):
    fake.config = "beta"
    result = make(action=action, flake=FLAKE, build_host="builder").run(check_mode=True)
    assert result["cmd"] == [NIXOS_REBUILD, "build", "--flake", FLAKE, "--build-host", "builder"]
    assert result["changed"] is True and result["built_system"] == result["new_system"] == fake.system("beta")
    assert fake.current == fake.system("alpha")


def test_build_with_build_host_takes_the_printed_path(fake, make, tmp_path):
    fake.config = "beta"
    result = make(action="build", flake=FLAKE, build_host="builder").run()
    assert result["would_change"] is True and result["built_system"] == fake.system("beta")
    assert os.listdir(str(tmp_path / "tmp")) == []
    fake.config = "alpha"
    assert make(action="build", flake=FLAKE, build_host="builder").run()["would_change"] is False


def test_build_host_without_a_printed_path_fails_saying_what_to_do(fake, make):
    fake.build_host_prints_path = False  # an older nixos-rebuild: no ./result, no path
    msg, result = _fail(make(action="build", flake=FLAKE, build_host="builder"))
    assert msg.startswith(
        "nixos-rebuild build exited 0 but left no ./result link and did not print the built system "
        "as the last line of its output; older nixos-rebuild versions do that with build_host: "
        "point nixos_rebuild_path at nixos-rebuild-ng"
    )
    assert "leave build_host out for check mode and action=build" in msg and "\n" not in msg
    assert result["rc"] == 0 and result["changed"] is False


@pytest.mark.parametrize("last", ["/tmp/not-the-store", "%s/not-a-store-path", "%s/%s-x with spaces"])
def test_only_a_store_path_as_the_last_line_counts_as_built(fake, make, last):
    last = last.replace("%s", fake.store, 1).replace("%s", "a" * 32)

    def runner(args, **kwargs):
        return 0, "building...\n" + last + "\n", ""

    msg, _result = _fail(make(action="build", flake=FLAKE, build_host="builder", runner=runner))
    assert msg.startswith("nixos-rebuild build exited 0 but left no ./result link")


@pytest.mark.parametrize("action", ["test", "dry-activate"])
def test_classic_test_and_dry_activate_leave_no_result_link(fake, make, tmp_path, monkeypatch, action):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    fake.config = "beta"
    make(action=action, nixos_config="/etc/nixos/configuration.nix", confirm=False).run()
    assert os.listdir(str(cwd)) == []
    (where,) = fake.result_dirs
    assert os.path.dirname(where) == str(tmp_path / "tmp") and not os.path.exists(where)


def test_relative_flake_and_nixos_config_are_made_absolute(fake, make, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make(action="dry-build", flake=".#p620").run()
    make(action="dry-build", flake="path:nixos").run()
    make(action="dry-build", flake="github:nixos/nixpkgs#x").run()
    make(action="dry-build", nixos_config="nixos/configuration.nix").run()
    assert [call[2:] for call in fake.commands("nixos-rebuild")] == [
        ["--flake", "%s#p620" % tmp_path],
        ["--flake", "path:%s" % (tmp_path / "nixos")],
        ["--flake", "github:nixos/nixpkgs#x"],
        ["-I", "nixos-config=%s" % (tmp_path / "nixos" / "configuration.nix"), "--no-flake"],
    ]


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        (["--upgrade"], "extra_args must not contain --upgrade in check mode: it updates the root user's channels"),
        (["--upgrade-all"], "must not contain --upgrade-all in check mode"),
        (["--recreate-lock-file"], "must not contain --recreate-lock-file in check mode: it rewrites the flake"),
        (["--update-input", "nixpkgs"], "must not contain --update-input in check mode"),
        (["--update-input=nixpkgs"], "must not contain --update-input in check mode"),
        (["--commit-lock-file"], "must not contain --commit-lock-file in check mode"),
        (["--specialisation", "debug"], "must not contain --specialisation in check mode or with action=build"),
        (["-c", "debug"], "must not contain -c in check mode or with action=build"),
    ],
)
def test_check_mode_rejects_extra_args_that_change_things(make, extra, reason):
    def runner(args, **kwargs):
        raise AssertionError("nothing may run for bad input, ran %r" % (args,))

    with pytest.raises(RebuildInputError) as exc:
        make(runner=runner, flake=FLAKE, extra_args=extra).run(check_mode=True)
    assert reason in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(RebuildInputError, match=reason.split(":")[0]):
        validate_params({"flake": FLAKE, "extra_args": extra}, check_mode=True)


def test_changing_extra_args_pass_outside_check_mode_and_specialisation_with_switch(fake, make):
    fake.config = "beta"
    result = make(flake=FLAKE, extra_args=["--upgrade", "--specialisation", "debug"], confirm=False).run()
    assert result["cmd"] == [NIXOS_REBUILD, "switch", "--flake", FLAKE, "--upgrade", "--specialisation", "debug"]
    with pytest.raises(RebuildInputError, match="nixos-rebuild accepts it only with switch and test"):
        make(action="build", flake=FLAKE, extra_args=["--specialisation=debug"])


# -- input validation ------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"action": "rollback"}, "action must be one of switch, boot, test, build, dry-build, dry-activate"),
        ({"flake": FLAKE, "nixos_config": "/etc/nixos/configuration.nix"}, "flake and nixos_config are mutually"),
        ({"flake": ""}, "flake must be a non-empty string"),
        ({"confirm_timeout": 0}, "confirm_timeout must be an integer from 1"),
        ({"confirm_timeout": -5}, "confirm_timeout must be an integer from 1"),
        ({"confirm_ssh_port": 0}, "confirm_ssh_port must be an integer from 1 to 65535"),
        ({"health_urls": ["ftp://example.org/"]}, "health_urls[0] 'ftp://example.org/' must be an http:// or https://"),
        ({"health_urls": ["localhost:8080/health"]}, "must be an http:// or https:// URL"),
        ({"health_urls": ["http:///x"]}, "must be an http:// or https:// URL with a host"),
        ({"health_commands": [[]]}, "health_commands[0] is empty"),
        ({"health_commands": ["   "]}, "health_commands[0] is empty"),
        ({"health_commands": ["echo 'unclosed"]}, "cannot be split into words"),
        ({"health_commands": [{"cmd": "x"}]}, "must be a list of words or a string"),
        ({"health_commands": [["ls", None]]}, "every word must be a string"),
        ({"action": "boot", "confirm": True}, "confirm applies only to action=switch or action=test"),
        ({"action": "boot", "health_urls": ["http://x/"]}, "they need action=switch or action=test"),
        ({"confirm": False, "health_commands": ["true"]}, "checked only when confirm=true"),
        ({"extra_args": ["--rollback"]}, "extra_args must not contain --rollback: use the rollback option"),
        ({"extra_args": ["--flake=/srv#x"]}, "extra_args must not contain --flake"),
        ({"extra_args": ["--target-host", "x"]}, "use the target_host option"),
        ({"target_host": "-oProxyCommand=touch /tmp/x"}, "target_host must be one ssh destination"),
        ({"build_host": "a b"}, "build_host must be one ssh destination"),
    ],
)
def test_bad_input_is_rejected_before_anything_runs(make, params, reason):
    def runner(args, **kwargs):
        raise AssertionError("nothing may run for bad input, ran %r" % (args,))

    with pytest.raises(RebuildInputError) as exc:
        make(runner=runner, **params).run()
    assert reason in str(exc.value)
    assert "\n" not in str(exc.value)


def test_bad_nix_sshopts_are_rejected(make):
    with pytest.raises(RebuildInputError, match="NIX_SSHOPTS cannot be split"):
        make(environ={"NIX_SSHOPTS": "-o 'unclosed"})


def test_validate_params_fills_defaults():
    params = validate_params({"flake": FLAKE, "health_commands": ["systemctl is-active sshd", ["curl", "-m", 5, "u"]]})
    assert params["action"] == "switch" and params["confirm"] is True and params["rollback"] is True
    assert params["confirm_timeout"] == 60 and params["confirm_ssh_port"] == 22
    assert params["health_commands"] == [["systemctl", "is-active", "sshd"], ["curl", "-m", "5", "u"]]
    assert validate_params({"action": "build"})["confirm"] is False


# -- arguments: flake, classic, hosts --------------------------------------


def test_flake_and_classic_and_default_arguments(fake, make):
    fake.config = "beta"
    make(flake="path:/srv/nixos#p620", confirm=False).run()
    fake.config = "gamma"
    make(nixos_config="/etc/nixos/configuration.nix", extra_args=["--show-trace"], confirm=False).run()
    fake.config = "alpha"
    make(confirm=False).run()
    assert [call[1:] for call in fake.commands("nixos-rebuild")] == [
        ["switch", "--flake", "path:/srv/nixos#p620"],
        ["switch", "-I", "nixos-config=/etc/nixos/configuration.nix", "--no-flake", "--show-trace"],
        ["switch"],
    ]


def test_nixos_config_wins_over_an_etc_nixos_flake(fake, make):
    fake.etc_flake = "gamma"  # /etc/nixos/flake.nix exists: without --no-flake nixos-rebuild would build it
    fake.config = "beta"
    config = "/etc/nixos/configuration.nix"
    checked = make(nixos_config=config).run(check_mode=True)
    assert checked["built_system"] == fake.system("beta")
    result = make(nixos_config=config, confirm=False).run()
    assert result["new_system"] == fake.current == fake.system("beta")
    assert result["cmd"] == [NIXOS_REBUILD, "switch", "-I", "nixos-config=" + config, "--no-flake"]


@pytest.mark.parametrize(("action", "check_mode"), [("switch", True), ("build", False), ("switch", False)])
def test_target_host_flake_without_attribute_uses_the_targets_hostname(fake, make, action, check_mode):
    fake.attrs = {"p620": "beta", "controller": "gamma"}  # gamma is what the controller's hostname would build
    rebuild = make(action=action, flake="/srv/nixos", target_host="root@p620", confirm=False)
    result = rebuild.run(check_mode=check_mode)
    assert result["new_system"] == fake.system("beta")
    ran = "switch" if action == "switch" and not check_mode else "build"
    assert result["cmd"][1:4] == [ran, "--flake", "/srv/nixos#p620"]
    assert fake.commands("ssh")[0][-2:] == ["root@p620", "env LC_ALL=C cat /proc/sys/kernel/hostname"]


def test_target_hostname_is_read_once_and_used_for_the_rollback_too(fake, make):
    fake.attrs = {"p620": "beta", "controller": "gamma"}
    fake.ssh_probe_ok = False
    _msg, result = _fail(make(flake="/srv/nixos", target_host="p620", confirm_timeout=2))
    assert result["cmd"][:4] == [NIXOS_REBUILD, "switch", "--flake", "/srv/nixos#p620"]
    assert result["rollback"][0]["cmd"][:6] == [
        NIXOS_REBUILD,
        "switch",
        "--rollback",
        "--fast",
        "--flake",
        "/srv/nixos#p620",
    ]
    assert len([call for call in fake.commands("ssh") if "cat /proc/sys/kernel/hostname" in call[-1]]) == 1


def test_no_hostname_lookup_with_an_attribute_or_without_target_host(fake, make):
    fake.attrs = {"p620": "beta", "controller": "gamma"}
    assert make(action="build", flake="/srv/nixos").run()["built_system"] == fake.system("gamma")
    assert make(action="build", flake="/srv/nixos#p620", target_host="p620").run()["cmd"][3] == "/srv/nixos#p620"
    assert not [call for call in fake.calls if "/proc/sys/kernel/hostname" in call[-1]]


@pytest.mark.parametrize(("hostname", "ssh_up", "why"), [("", True, "got ''"), ("p620", False, "Connection refused")])
def test_unreadable_target_hostname_fails_before_building(fake, make, hostname, ssh_up, why):
    fake.hostname = hostname
    fake.ssh_up = ssh_up
    msg, _result = _fail(make(action="build", flake="/srv/nixos", target_host="p620"))
    assert msg.startswith("cannot read the hostname of p620 for the flake attribute")
    assert why in msg and msg.endswith("name it in flake as <flake>#<name>")
    assert not fake.commands("nixos-rebuild")


def test_target_host_runs_remotely_and_confirms_over_a_fresh_ssh_connection(fake, make, sshd):
    fake.config = "beta"
    fake.health["systemctl"] = 0
    rebuild = make(
        flake=FLAKE,
        target_host="root@p620",
        build_host="builder",
        health_commands=[["systemctl", "is-active", "nginx"]],
        confirm_ssh_port=22,
        environ={"NIX_SSHOPTS": "-o Port=2222"},
    )
    result = rebuild.run()
    assert result["changed"] is True and result["confirmed"] is True
    assert result["new_generation"] == 2
    assert result["cmd"] == [
        NIXOS_REBUILD,
        *["switch", "--flake", FLAKE, "--target-host", "root@p620", "--build-host", "builder"],
    ]
    ssh_calls = fake.commands("ssh")
    remote = "env LC_ALL=C readlink -f %s %s %s" % (
        fake.paths.current_system,
        fake.paths.system_profile,
        fake.paths.booted_system,
    )
    assert ssh_calls[0] == [*SSH, "-o", "ConnectTimeout=30", *KEEPALIVE, "-o", "Port=2222", "root@p620", remote]
    fresh = [
        *[*SSH, "-o", "ConnectTimeout=10", *KEEPALIVE, "-o", "ControlPath=none"],
        *["-o", "Port=2222", "root@p620", "true"],
    ]
    assert fresh in ssh_calls
    assert ssh_calls[-1][-1] == "env LC_ALL=C systemctl is-active nginx"
    assert sshd.connections == 0  # no local TCP probe with target_host


def test_target_host_probe_port_and_check_mode_build_locally(fake, make):
    fake.config = "beta"
    make(flake=FLAKE, target_host="p620", confirm_ssh_port=2022).run()
    probe = [call for call in fake.commands("ssh") if call[-1] == "true"]
    assert probe == [
        [*SSH, "-o", "ConnectTimeout=10", *KEEPALIVE, "-o", "ControlPath=none", "-p", "2022", "p620", "true"]
    ]
    fake.config = "gamma"
    result = make(flake=FLAKE, target_host="p620", use_remote_sudo=True).run(check_mode=True)
    # Building needs neither the target nor sudo; the running system is read over ssh.
    assert result["cmd"] == [NIXOS_REBUILD, "build", "--flake", FLAKE]
    assert result["changed"] is True and fake.current == fake.system("beta")


def test_target_host_failed_fresh_connection_rolls_back_over_ssh_with_sudo(fake, make):
    fake.config = "beta"
    fake.ssh_probe_ok = False
    fake.rollback_fail = (1, "error: unable to start the switch")
    msg, result = _fail(make(flake=FLAKE, target_host="admin@p620", use_remote_sudo=True, confirm_timeout=4))
    alpha = fake.system("alpha")
    assert "fresh SSH connection to admin@p620 (rc 255): kex_exchange_identification" in msg
    assert msg.endswith("rolled back to generation 3 (%s)" % alpha)
    rollback_cmds = [step["cmd"] for step in result["rollback"]]
    assert rollback_cmds[0] == [
        *[NIXOS_REBUILD, "switch", "--rollback", "--fast", "--flake", FLAKE],
        *["--target-host", "admin@p620", "--use-remote-sudo"],
    ]
    assert rollback_cmds[1][-1] == "sudo -n -- env LC_ALL=C nix-env --profile %s --set %s" % (
        fake.paths.system_profile,
        alpha,
    )
    switch = [os.path.join(alpha, "bin", "switch-to-configuration"), "switch"]
    # switch-to-configuration runs in a transient unit, out of reach of an sshd restart's SIGHUP.
    assert rollback_cmds[2][:-1] == [*SSH, "-o", "ConnectTimeout=30", *KEEPALIVE, "admin@p620"]
    assert shlex.split(rollback_cmds[2][-1]) == [
        *["sudo", "-n", "--", "env", "LC_ALL=C", "systemd-run", "--wait", "--collect", "--quiet", "--", *switch]
    ]
    assert fake.sudo_commands == [
        ["env", "LC_ALL=C", "nix-env", "--profile", fake.paths.system_profile, "--set", alpha],
        ["env", "LC_ALL=C", "systemd-run", "--wait", "--collect", "--quiet", "--", *switch],
    ]
    assert fake.systemd_run_commands == [switch]
    assert fake.current == alpha


def test_target_host_unreachable_after_switch_reports_both_reasons(fake, make):
    fake.config = "beta"
    fake.ssh_down_after_activation = True
    msg, result = _fail(make(flake=FLAKE, target_host="p620"))
    assert msg.startswith("nixos-rebuild switch exited 0, then reading the system state failed: ")
    assert "cannot read the system links on p620: ssh: connect to host p620 port 22: Connection refused" in msg
    assert "rollback to %s failed too:" % fake.system("alpha") in msg
    assert result["rollback_failed"] is True and result["new_system"] is None
    assert fake.current == fake.system("beta")


def test_health_commands_are_bounded_by_timeout_when_available(fake, make, clock):
    fake.config = "beta"
    fake.health["systemctl"] = [1, 0]
    make(
        flake=FLAKE, health_commands=[["systemctl", "is-system-running"]], binaries={"timeout": "/usr/bin/timeout"}
    ).run()
    timed = fake.commands("timeout")
    assert timed[0] == ["/usr/bin/timeout", "-k", "5", "60s", "systemctl", "is-system-running"]
    assert timed[1] == ["/usr/bin/timeout", "-k", "5", "58s", "systemctl", "is-system-running"]


# -- diff ------------------------------------------------------------------


def test_diff_from_diff_closures(fake, make):
    fake.config = "beta"
    alpha, beta = fake.system("alpha"), fake.system("beta")
    result = make(flake=FLAKE).run(diff=True)
    assert ["nix", "--extra-experimental-features", "nix-command", "store", "diff-closures", alpha, beta] in fake.calls
    text = "openssh-9.7p1: removed\nnginx-1.26.2: added\nopenssh-9.8p1: added\n"
    assert result["closure_diff"] == dict(method="diff-closures")  # the text is returned once, in diff
    assert result["diff"] == dict(before=alpha + "\n", after=beta + "\n" + text, before_header=alpha, after_header=beta)


def test_diff_falls_back_to_requisites(fake, make):
    fake.config = "gamma"
    fake.diff_closures_ok = False
    alpha, gamma = fake.system("alpha"), fake.system("gamma")
    result = make(flake=FLAKE).run(diff=True)
    assert ["nix-store", "-q", "--requisites", alpha] in fake.calls
    assert ["nix-store", "-q", "--requisites", gamma] in fake.calls
    assert result["closure_diff"] == dict(method="requisites")
    assert result["diff"]["before"] == "glibc-2.39\nnixos-system-p620-alpha\nopenssh-9.7p1\n"
    assert result["diff"]["after"] == "glibc-2.40\nnixos-system-p620-gamma\nopenssh-9.8p1\n"


def test_diff_unavailable_warns(fake, make):
    fake.config = "beta"
    fake.diff_closures_ok = fake.requisites_ok = False
    rebuild = make(flake=FLAKE)
    result = rebuild.run(diff=True)
    assert result["closure_diff"] is None
    assert result["diff"]["after"] == fake.system("beta") + "\n"
    assert rebuild.warnings and rebuild.warnings[0].startswith("no closure diff: nix store diff-closures (rc 1)")


def test_diff_in_check_mode_runs_locally(fake, make):
    fake.config = "beta"
    result = make(flake=FLAKE, target_host="p620").run(check_mode=True, diff=True)
    assert result["closure_diff"]["method"] == "diff-closures"
    assert fake.commands("nix")[0][0] == "nix"
    assert not any(call[-1].startswith("env LC_ALL=C nix ") for call in fake.commands("ssh"))


def test_no_diff_without_a_change(fake, make):
    result = make(flake=FLAKE).run(diff=True)
    assert "diff" not in result and not fake.commands("nix")


# -- what is returned: credentials, sizes -----------------------------------

SECRET_URL = "git+https://deploy:s3cr3t-token@git.example.org/homelab/nixos?ref=main"
SECRET_FLAKE = SECRET_URL + "#p620"
REDACTED_FLAKE = "git+https://***@git.example.org/homelab/nixos?ref=main#p620"


def test_credentials_in_the_flake_are_redacted_in_cmd_outputs_and_messages(fake, make):
    fake.fail = (1, "error: unable to download '%s': HTTP error 401" % SECRET_URL)
    msg, result = _fail(make(flake=SECRET_FLAKE))
    assert "s3cr3t" not in msg and "s3cr3t" not in repr(result)
    redacted_url = REDACTED_FLAKE[: -len("#p620")]
    assert msg == "nixos-rebuild switch failed (rc 1): error: unable to download '%s': HTTP error 401" % redacted_url
    assert redacted_url in result["stderr"]
    assert result["cmd"] == [NIXOS_REBUILD, "switch", "--flake", REDACTED_FLAKE]
    # The real command still got the credentials.
    assert fake.commands("nixos-rebuild")[0][3] == SECRET_FLAKE


def test_credentials_are_redacted_in_a_successful_result_and_in_rollback_steps(fake, make):
    fake.config = "beta"
    fake.health["false"] = 1
    _msg, result = _fail(make(flake=SECRET_FLAKE, health_commands=[["false"]], confirm_timeout=2))
    assert result["rollback"][0]["cmd"][5] == REDACTED_FLAKE and "s3cr3t" not in repr(result)
    ok = make(action="dry-build", flake=SECRET_FLAKE).run()
    assert ok["cmd"][3] == REDACTED_FLAKE


def test_redact():
    assert redact("git+https://user:tok@h/x") == "git+https://***@h/x"
    assert redact("fetch https://a:b@h1/ and http://c:@h2/") == "fetch https://***@h1/ and http://***@h2/"
    assert redact("ssh://root@host/x root@host git+ssh://git@github.com/o/r") == (
        "ssh://root@host/x root@host git+ssh://git@github.com/o/r"
    )
    assert redact("https://h/path?q=a:b@c") == "https://h/path?q=a:b@c"


def test_outputs_keep_their_last_64_kib(fake, make):
    big = "".join("line %06d of the build log\n" % i for i in range(5000))  # ~135 KB
    fake.fail = (1, big + "error: boom")
    _msg, result = _fail(make(flake=FLAKE))
    stderr = result["stderr"]
    assert stderr.startswith("[... first ") and stderr.endswith("line 004999 of the build log\nerror: boom")
    assert len(stderr.encode()) <= 64 * 1024 + 40


def test_rollback_outputs_keep_their_last_64_kib(fake, make):
    fake.config = "beta"
    fake.health["false"] = 1
    fake.rollback_fail = (1, "x" * 200000 + "\nerror: cannot connect to the daemon")
    _msg, result = _fail(make(flake=FLAKE, health_commands=[["false"]], confirm_timeout=2))
    step = result["rollback"][0]
    assert len(step["stderr"]) < 64 * 1024 + 40 and step["stderr"].endswith("error: cannot connect to the daemon")


def test_tail():
    assert tail("short") == "short"
    text = "ä" * 40000  # 80000 bytes in UTF-8
    cut = tail(text)
    header, kept = cut.split("\n", 1)
    assert header == "[... first %d bytes cut ...]" % (80000 - 65536)
    assert kept == "ä" * 32768


def test_diff_text_is_returned_once(fake, make):
    fake.config = "beta"
    result = make(flake=FLAKE).run(diff=True)
    assert repr(result).count("nginx-1.26.2: added") == 1


# -- the real probes -------------------------------------------------------


def test_ssh_banner_accepts_a_real_ssh_greeting(sshd):
    ok, banner = ssh_banner("127.0.0.1", sshd.port, 2)
    assert ok is True and banner == "SSH-2.0-test"


def test_ssh_banner_accepts_lines_before_the_version():
    with FakeTcpServer(b"hello\r\nSSH-2.0-OpenSSH_9.8\r\n") as server:
        assert ssh_banner("127.0.0.1", server.port, 2) == (True, "SSH-2.0-OpenSSH_9.8")


def test_ssh_banner_rejects_a_closed_port_quickly():
    start = time.monotonic()
    ok, reason = ssh_banner("127.0.0.1", closed_port(), 2)
    assert ok is False and "refused" in reason.lower()
    assert time.monotonic() - start < 2


def test_ssh_banner_rejects_a_silent_server_within_the_timeout():
    with FakeTcpServer(lambda conn: True) as server:  # holds every connection open, saying nothing
        start = time.monotonic()
        ok, reason = ssh_banner("127.0.0.1", server.port, 0.5)
        elapsed = time.monotonic() - start
    assert ok is False and reason == "no SSH banner within 0.5s"
    assert 0.4 < elapsed < 2


def test_ssh_banner_rejects_a_non_ssh_service():
    with FakeTcpServer(b"HTTP/1.1 400 Bad Request\r\n\r\n") as server:
        ok, reason = ssh_banner("127.0.0.1", server.port, 1)
    assert ok is False and reason == "connection closed without an SSH banner"


def test_confirmation_with_real_time_gives_up_at_the_timeout(fake, tmp_path):
    port = closed_port()
    rebuild = NixosRebuild(
        {"confirm_timeout": 1, "confirm_ssh_port": port}, fake, paths=fake.paths, interval=0.2, environ={}
    )
    start = time.monotonic()
    failure = rebuild.confirm()
    elapsed = time.monotonic() - start
    assert failure.startswith("fresh SSH connection to 127.0.0.1:%d: " % port)
    assert failure.endswith("(still failing after 1s)")
    assert 0.9 < elapsed < 3


class _Health(http.server.BaseHTTPRequestHandler):
    """Answers with the server's ``statuses`` in turn (the last one sticks)."""

    def do_GET(self):
        status = self.server.statuses.pop(0) if len(self.server.statuses) > 1 else self.server.statuses[0]
        self.send_response(status)
        if 300 <= status < 400:
            self.send_header("Location", "https://login.invalid/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    servers = []

    def start(*statuses):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
        server.statuses = list(statuses)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return "http://127.0.0.1:%d/healthz" % server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_health_urls_accept_2xx_and_3xx(fake, make, http_server):
    fake.config = "beta"
    urls = [http_server(200), http_server(302)]
    result = make(flake=FLAKE, health_urls=urls).run()
    assert result["confirmed"] is True  # the redirect to an unresolvable host was not followed


def test_health_url_is_retried_until_it_answers(fake, make, http_server, clock):
    fake.config = "beta"
    result = make(flake=FLAKE, health_urls=[http_server(503, 503, 204)]).run()
    assert result["confirmed"] is True and clock.sleeps == [2.0, 2.0]


def test_failing_health_url_rolls_back(fake, make, http_server):
    fake.config = "beta"
    url = http_server(500)
    msg, result = _fail(make(flake=FLAKE, health_urls=[url], confirm_timeout=4))
    assert "failed: health URL %s answered HTTP 500 (still failing after 4s); rolled back" % url in msg
    assert result["rolled_back"] is True


def test_unreachable_health_url(fake, make):
    fake.config = "beta"
    url = "http://127.0.0.1:%d/" % closed_port()
    msg, _result = _fail(make(flake=FLAKE, health_urls=[url], confirm_timeout=2))
    assert "health URL %s: " % url in msg and "refused" in msg.lower()


def test_a_crashing_check_still_rolls_back(fake, make):
    fake.config = "beta"
    rebuild = make(flake=FLAKE, health_urls=["http://127.0.0.1/"])
    rebuild.url_opener = None  # calling it raises TypeError inside the URL check
    msg, result = _fail(rebuild)
    assert "health URL http://127.0.0.1/: 'NoneType' object is not callable" in msg
    assert result["rolled_back"] is True


# -- helpers ---------------------------------------------------------------


def test_parse_generation():
    assert parse_generation("system-42-link") == 42
    assert parse_generation("system-42-link\n") == 42
    assert parse_generation("/nix/var/nix/profiles/system-7-link") == 7
    assert parse_generation("system-profiles/web-3-link") is None
    assert parse_generation("/nix/store/abc-nixos-system") is None
    assert parse_generation(None) is None


def test_pin_binary_resolves_directories_and_keeps_the_program_name(tmp_path):
    store = tmp_path / "store"
    nix_bin = store / "nix-2.24" / "bin"
    nix_bin.mkdir(parents=True)
    (nix_bin / "nix").write_text("")
    os.symlink("nix", str(nix_bin / "nix-env"))  # a multi-call binary: must stay nix-env
    rebuild_bin = store / "nixos-rebuild" / "bin"
    rebuild_bin.mkdir(parents=True)
    (rebuild_bin / "nixos-rebuild").write_text("")
    sw = store / "system-1" / "sw" / "bin"
    sw.mkdir(parents=True)
    os.symlink(str(nix_bin / "nix-env"), str(sw / "nix-env"))
    os.symlink("../../../nixos-rebuild/bin/nixos-rebuild", str(sw / "nixos-rebuild"))
    current = tmp_path / "current-system"
    os.symlink(str(store / "system-1"), str(current))
    found = os.path.join(str(current), "sw", "bin")
    assert pin_binary(os.path.join(found, "nix-env")) == str(nix_bin / "nix-env")
    assert pin_binary(os.path.join(found, "nixos-rebuild")) == str(rebuild_bin / "nixos-rebuild")
    assert pin_binary(str(nix_bin / "nix")) == str(nix_bin / "nix")
    assert pin_binary("nix-env") == "nix-env" and pin_binary(None) is None
    # After a switch the old paths stay valid.
    os.unlink(str(current))
    os.symlink(str(tmp_path / "elsewhere"), str(current))
    assert os.path.exists(str(nix_bin / "nix-env"))


def test_store_name_and_error_summary():
    assert store_name("/nix/store/" + "a" * 32 + "-nginx-1.26.2") == "nginx-1.26.2"
    assert store_name("/tmp/plain") == "plain"
    assert error_summary("building...\nerror: boom\n  at foo\n") == "error: boom"
    assert error_summary("", "last line\n") == "last line"
    assert error_summary("", "") == "no output"
