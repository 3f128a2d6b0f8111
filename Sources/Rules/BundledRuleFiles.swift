/// The rule files that ship inside the binary: the package's `rules/` folder as it was at build
/// time, compiled in by the EmbedRules build plugin, so an installed or copied binary runs with
/// zero configuration.
public enum BundledRuleFiles {
    /// How rule paths name the built-in set (`--rules @bundled`, or an entry of `IW_DETECT_RULES`),
    /// alone or beside other paths.
    public static let path = "@bundled"

    /// Every built-in file as (display name, text), names as `@bundled/injection.yaml`.
    public static var sources: [(String, String)] { embedded.map { (path + "/" + $0.name, $0.text) } }
}
