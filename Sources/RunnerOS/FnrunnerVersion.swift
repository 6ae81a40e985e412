/// fnrunner's version, written in this one place: `fnrunner --version`, `fnrunner serve
/// --version`, Fn's `GET /version` and the Debian package (`scripts/package` asks the binary)
/// all read it, so an operator sees one number for one build.
public enum FnrunnerVersion {
    public static let current = "0.2.0"
}
