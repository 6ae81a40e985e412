import Runner
import RunnerOS

/// The fork server a zygote template runs: the runner's own Python, given to the image's
/// interpreter with `-c` (nothing is mounted into the image for it). It does what the FDK's
/// console script does up to the point where the FDK would start listening: runs the script
/// with `fdk.handle` replaced, imports the function's module (the FDK itself imports it only
/// at the first call) and the modules the FDK imports at its first request, tells the runner it
/// is ready, and then forks one instance per request on its control socket (its stdin, a
/// SOCK_SEQPACKET socket).
///
/// A fork gets the runner's output pipe (SCM_RIGHTS) as its stdout and stderr, waits for
/// SIGUSR1 (sent once the runner has moved it into its own cgroups), re-seeds `random`, points
/// FN_LISTENER at its own directory under /tmp/iofs, and only then enters the real
/// `fdk.handle` on an event loop of its own (a loop the function's import made is the
/// template's). The template answers each request with `forked <directory>` and the fork's
/// pidfd, or `failed` and why.
enum ZygoteForkServer {
    static let source = #"""
import asyncio, importlib, os, random, signal, socket, sys, threading


def main():
    control = socket.socket(fileno=os.dup(0))
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    sys.path[0] = os.path.dirname(script)
    import fdk
    real_handle = fdk.handle
    served = []

    def template(handle_code):
        served.append(True)
        handle_code.handler()
        # What the FDK imports only once its first request has come (absent ones are skipped).
        for name in ("fdk.runner", "fdk.context", "fdk.response", "fdk.headers", "fdk.errors"):
            try:
                importlib.import_module(name)
            except ImportError:
                pass
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)
        if threading.active_count() > 1:
            print("fnrunner zygote: the function started threads while it was imported; forks have none of them",
                  file=sys.stderr, flush=True)
        control.send(b"ready")
        while True:
            try:
                message, fds, _, _ = socket.recv_fds(control, 256, 1)
            except OSError:
                os._exit(0)
            if not message:
                os._exit(0)
            if not message.startswith(b"fork ") or len(fds) != 1:
                os._exit(3)
            name = message[5:].decode()
            output = fds[0]
            sys.stdout.flush()
            sys.stderr.flush()
            previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
            try:
                pid = os.fork()
            except OSError as error:
                signal.pthread_sigmask(signal.SIG_SETMASK, previous)
                os.close(output)
                control.send(b"failed " + str(error).encode()[:200])
                continue
            if pid == 0:
                try:
                    control.close()
                    os.dup2(output, 1)
                    os.dup2(output, 2)
                    os.close(output)
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    signal.sigwait({signal.SIGUSR1})
                    signal.pthread_sigmask(signal.SIG_SETMASK, previous)
                    random.seed()
                    asyncio.set_event_loop(asyncio.new_event_loop())
                    os.environ["FN_LISTENER"] = "unix:/tmp/iofs/" + name + "/lsnr.sock"
                except BaseException:
                    os._exit(4)
                return real_handle(handle_code)
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
            os.close(output)
            try:
                pidfd = os.pidfd_open(pid)
            except OSError as error:
                control.send(b"failed " + str(error).encode()[:200])
                continue
            socket.send_fds(control, [b"forked " + name.encode()], [pidfd])
            os.close(pidfd)

    if not hasattr(socket, "send_fds"):
        sys.exit("fnrunner zygote: needs Python 3.9 or later (socket.send_fds)")
    fdk.handle = template
    import runpy
    runpy.run_path(script, run_name="__main__")
    if not served:
        sys.exit("fnrunner zygote: %s did not call fdk.handle" % script)


main()
"""#

    /// The template's argv: the interpreter named by the entrypoint's `#!` line (with its one
    /// optional argument), the fork server, and the original argv. Only an entrypoint that is
    /// a Python script (like the FDK's /python/bin/fdk) can be a template.
    static func argv(for original: [String], layers: [String]) throws(RunnerError) -> [String] {
        guard let program = original.first, program.hasPrefix("/") else {
            throw notPython(original.first ?? "(none)", "is not an absolute path to a script")
        }
        guard let found = OverlayLookup.regularFile(String(program.dropFirst()), in: layers) else {
            throw notPython(program, "is not a regular file in the image")
        }
        let head = (try? FileSystem.readPrefix(found.path, bytes: 256)) ?? []
        guard head.starts(with: Array("#!".utf8)), let end = head.firstIndex(of: UInt8(ascii: "\n")) else {
            throw notPython(program, "has no #! line")
        }
        let line = String(decoding: head[2..<end], as: UTF8.self)
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let interpreter = words.first, interpreter.hasPrefix("/"),
            interpreter.split(separator: "/").last?.hasPrefix("python") == true, words.count <= 2
        else {
            throw notPython(program, "is not run by python (#!\(line))")
        }
        return words + ["-c", source] + original
    }

    private static func notPython(_ program: String, _ why: String) -> RunnerError {
        RunnerError(
            .invalidArgument, "\(FunctionDefinition.zygoteAnnotation): python needs an entrypoint that is a Python script, and \(program) \(why)",
            step: "zygote template")
    }
}
