/// Reads series out of Prometheus' text format, the way a scraper would: by the series as it is
/// written (`name` or `name{label="value",...}`), whatever the order of families and whether a
/// value is written `2` or `2.0`.
public enum PrometheusText {
    public static func value(of series: String, in text: String) -> Double? {
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), line[..<space] == series else { continue }
            return Double(line[line.index(after: space)...])
        }
        return nil
    }

    /// The value as a whole number, for counters and integral gauges.
    public static func count(of series: String, in text: String) -> Int? {
        value(of: series, in: text).flatMap { $0.rounded() == $0 ? Int(exactly: $0) : nil }
    }
}
