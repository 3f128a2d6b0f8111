/// iw-detect's version: `iw-detect --version`, and what sinks report as the sending product's
/// version (the CEF header).
public enum IWDetectVersion {
    public static let current = "0.1.0"
}
