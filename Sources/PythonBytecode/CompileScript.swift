/// The program a bytecode build runs with the image's own interpreter (`python3 -c`): it
/// compiles every module source under the given roots and the interpreter's `sys.path` that
/// has no cache file in the image yet, writing each cache file to where the interpreter would
/// look for it, under the output directory instead of `/`. It reads nothing but the image and
/// prints one JSON line of counts. Kept to what Python 3.4's standard library has (py_compile,
/// importlib), with the invalidation mode left at the default: the source's time and size,
/// which the image's layers keep.
enum CompileScript {
    /// Where the build's private tmpfs is attached in its container.
    static let outputDirectory = "/tmp/fnrunner-bytecode"
    /// More modules than any function image holds; bounds a build's time on a huge tree.
    static let maximumModules = 50_000

    static func argv(interpreter: String, roots: [String]) -> [String] {
        [interpreter, "-B", "-c", source, outputDirectory, String(maximumModules)] + roots
    }

    static let source = """
        import importlib.util, json, os, py_compile, sys
        out, limit = sys.argv[1], int(sys.argv[2])
        compiled = failed = present = 0
        seen = set()
        special = ("/proc", "/sys", "/dev", "/tmp")
        for root in sys.argv[3:] + sys.path:
            if not root or not os.path.isabs(root):
                continue
            root = os.path.normpath(root)
            if root == "/" or any(root == s or root.startswith(s + "/") for s in special):
                continue
            for directory, subdirectories, files in os.walk(root):
                if directory in seen:
                    subdirectories[:] = []
                    continue
                seen.add(directory)
                subdirectories[:] = [d for d in subdirectories if d != "__pycache__"]
                for name in files:
                    if not name.endswith(".py") or compiled + failed >= limit:
                        continue
                    source = os.path.join(directory, name)
                    try:
                        cache = importlib.util.cache_from_source(source)
                    except Exception:
                        continue
                    if os.path.lexists(cache):
                        present += 1
                        continue
                    try:
                        py_compile.compile(source, cfile=out + cache, doraise=True)
                        compiled += 1
                    except Exception:
                        failed += 1
        print(json.dumps({"compiled": compiled, "failed": failed, "present": present}))
        """
}
