"""The Debian package scripts/package builds, inspected as an operator's machine would see it:
its metadata, its files, its unit (systemd-analyze verify), its settings file and its binaries.

Run by scripts/test with FNRUNNER_DEB set to the .deb: python3 -m unittest Tests/Packaging/test_package.py
"""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEB = os.environ.get("FNRUNNER_DEB", "")
# Variables the runner sets in a function's environment, not settings of the node.
FUNCTION_ENVIRONMENT = {"FN_APP_ID", "FN_APP_NAME", "FN_FN_ID", "FN_FN_NAME", "FN_FORMAT", "FN_LISTENER", "FN_MEMORY", "FN_TYPE"}


def run(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw).stdout


@unittest.skipUnless(DEB, "FNRUNNER_DEB names no package (scripts/test builds one)")
class ThePackage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="fnrunner-deb-")
        run("dpkg-deb", "-x", DEB, cls.root)
        cls.fields = {}
        for line in run("dpkg-deb", "-f", DEB).splitlines():
            key, _, value = line.partition(": ")
            cls.fields[key] = value
        cls.listing = run("dpkg-deb", "-c", DEB)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)

    def path(self, relative):
        return os.path.join(self.root, relative)

    def test_its_version_is_the_one_the_binaries_print(self):
        for binary in ("fnrunner", "fnrunner-serve"):
            printed = run(self.path("usr/bin/" + binary), "--version").strip()
            self.assertEqual(printed, self.fields["Version"], binary)
        self.assertTrue(os.path.basename(DEB).startswith("fnrunner_%s_%s" % (self.fields["Version"], self.fields["Architecture"])))

    def test_it_depends_on_the_packages_of_every_library_the_binaries_load(self):
        depends = self.fields["Depends"]
        names = {re.match(r"[a-z0-9.+-]+", d.strip()).group(0) for d in depends.split(",")}
        # Linked (seccomp, cap, sqlite, zlib, libc, libstdc++) and dlopen'd (curl, archive, nftables).
        for package in ("libseccomp2", "libcap2", "libsqlite3-0", "zlib1g", "libc6", "libstdc++6", "libcurl4",
                        "libarchive13", "libnftables1"):
            self.assertIn(package, names, depends)
        self.assertFalse(any("swift" in n for n in names), "the Swift runtime is linked in statically: " + depends)
        for d in depends.split(","):
            self.assertRegex(d.strip(), r"^[a-z0-9.+-]+ \(>= [0-9][^)]*\)$")

    def test_it_holds_the_binaries_the_unit_the_settings_and_the_state_directory(self):
        for entry, mode in (("./usr/bin/fnrunner", "-rwxr-xr-x"), ("./usr/bin/fnrunner-serve", "-rwxr-xr-x"),
                            ("./usr/lib/systemd/system/fnrunner.service", "-rw-r--r--"),
                            ("./usr/lib/tmpfiles.d/fnrunner.conf", "-rw-r--r--"), ("./etc/fnrunner/serve.env", "-rw-r--r--")):
            line = next((l for l in self.listing.splitlines() if l.endswith(" " + entry)), None)
            self.assertIsNotNone(line, entry)
            self.assertTrue(line.startswith(mode + " root/root"), line)
        with open(self.path("usr/lib/tmpfiles.d/fnrunner.conf")) as f:
            self.assertIn("d /run/fnrunner 0700 root root -", f.read())
        control = tempfile.mkdtemp(prefix="fnrunner-control-")
        try:
            run("dpkg-deb", "-e", DEB, control)
            with open(os.path.join(control, "conffiles")) as f:
                self.assertEqual(f.read().split(), ["/etc/fnrunner/serve.env"])
            for script in ("postinst", "prerm", "postrm"):
                run("sh", "-n", os.path.join(control, script))
            with open(os.path.join(control, "postinst")) as f:
                self.assertIn("mkdir -p /var/lib/fnrunner", f.read())
        finally:
            shutil.rmtree(control)

    def test_the_unit_passes_systemd_analyze_verify_without_a_warning(self):
        # verify needs the units the unit refers to (sysinit.target...) under the same root.
        units = self.path("usr/lib/systemd/system")
        for name in os.listdir("/lib/systemd/system"):
            source = os.path.join("/lib/systemd/system", name)
            if not os.path.exists(os.path.join(units, name)) and os.path.isfile(source) and not os.path.islink(source):
                shutil.copy(source, units)
        out = subprocess.run(["systemd-analyze", "verify", "--root=" + self.root, "fnrunner.service"],
                             capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stderr.strip() + out.stdout.strip(), "", "verify prints nothing for a sound unit")

    def test_the_unit_is_a_notify_service_that_drains_before_it_is_killed(self):
        with open(self.path("usr/lib/systemd/system/fnrunner.service")) as f:
            unit = dict(l.split("=", 1) for l in f.read().splitlines() if "=" in l and not l.startswith("#"))
        self.assertEqual(unit["Type"], "notify")
        self.assertEqual(unit["Delegate"], "yes")
        self.assertEqual(unit["KillMode"], "mixed")
        self.assertEqual(unit["EnvironmentFile"], "-/etc/fnrunner/serve.env")
        self.assertTrue(unit["ExecStart"].startswith("/usr/bin/fnrunner-serve --cgroup-delegated "))
        # The drain (FN_SHUTDOWN_GRACE_MSECS, 30 s by default) fits before systemd's SIGKILL.
        self.assertGreater(int(unit["TimeoutStopSec"]), 30)
        self.assertGreaterEqual(int(unit["LimitNOFILE"]), 65536)

    def test_the_settings_file_lists_every_setting_the_node_reads(self):
        with open(self.path("etc/fnrunner/serve.env")) as f:
            text = f.read()
        listed = set(re.findall(r"^#?((?:FN|FNRUNNER)_[A-Z0-9_]+)=", text, re.M))
        read = set()
        for dirpath, _, files in os.walk(os.path.join(REPO, "Sources")):
            for name in files:
                if name.endswith(".swift"):
                    with open(os.path.join(dirpath, name)) as f:
                        read |= set(re.findall(r'"((?:FN|FNRUNNER)_[A-Z0-9_]+)"', f.read()))
        self.assertEqual(sorted(read - FUNCTION_ENVIRONMENT - listed), [], "settings the sources read but serve.env lacks")
        self.assertEqual(sorted(listed - read - {"FNRUNNER_SERVE_OPTIONS"}), [], "settings serve.env lists that nothing reads")
        self.assertFalse(re.search(r"^(?:FN|FNRUNNER)_", text, re.M), "every setting is commented out")
        # serve --config takes the same file: it knows the same variables.
        with open(os.path.join(REPO, "Sources/fnrunner-serve/ServeConfigFile.swift")) as f:
            source = f.read()
        known = set(re.findall(r'"((?:FN|FNRUNNER)_[A-Z0-9_]+)"', source.split("static let variables", 1)[1].split("]", 1)[0]))
        self.assertEqual(sorted(known ^ listed), [], "serve --config and serve.env know the same variables")
        # The OpenTelemetry variables it lists are ones serve honours (and --config takes).
        with open(os.path.join(REPO, "Sources/fnrunner-serve/ServeTracing.swift")) as f:
            tracing = f.read()
        honoured = set(re.findall(r'"(OTEL_[A-Z0-9_]+)"', tracing))
        otel = set(re.findall(r"^#?(OTEL_[A-Z0-9_]+)=", text, re.M))
        self.assertTrue(otel, "serve.env shows how to turn traces on")
        self.assertEqual(sorted(otel - honoured), [], "OpenTelemetry variables serve.env lists that serve ignores")


if __name__ == "__main__":
    unittest.main()
