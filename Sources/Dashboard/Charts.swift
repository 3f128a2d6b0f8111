import Foundation

/// Inline SVG charts for the panels: no script, no external asset, every label escaped.
enum Chart {
    static let width = 480.0, height = 170.0
    static let left = 44.0, right = 8.0, top = 10.0, bottom = 24.0
    static var plotWidth: Double { width - left - right }
    static var plotHeight: Double { height - top - bottom }
    /// The drift panel's small multiples.
    static let smallHeight = 96.0

    /// Escapes text for HTML and SVG (elements and attribute values).
    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    static func number(_ d: Double) -> String {
        if d == d.rounded(), abs(d) < 1e12 { return String(Int64(d)) }
        if abs(d) >= 100 { return String(format: "%.0f", d) }
        if abs(d) >= 1 { return String(format: "%.1f", d) }
        return String(format: "%.3f", d)
    }

    static func f(_ d: Double) -> String { String(format: "%.1f", d) }

    static func open(_ label: String, height: Double = height) -> String {
        "<svg class=\"chart\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"\(escape(label))\" xmlns=\"http://www.w3.org/2000/svg\">"
    }

    /// The frame: a value axis from 0 (or `low`) to `high`, and the first and last time labels.
    static func frame(high: Double, low: Double = 0, first: String, last: String, height: Double = height) -> String {
        let y0 = height - bottom
        return "<line class=\"axis\" x1=\"\(f(left))\" y1=\"\(f(y0))\" x2=\"\(f(width - right))\" y2=\"\(f(y0))\"/>" +
            "<text class=\"tick\" x=\"\(f(left - 4))\" y=\"\(f(top + 8))\" text-anchor=\"end\">\(escape(number(high)))</text>" +
            "<text class=\"tick\" x=\"\(f(left - 4))\" y=\"\(f(y0))\" text-anchor=\"end\">\(escape(number(low)))</text>" +
            "<text class=\"tick\" x=\"\(f(left))\" y=\"\(f(height - 6))\">\(escape(first))</text>" +
            "<text class=\"tick\" x=\"\(f(width - right))\" y=\"\(f(height - 6))\" text-anchor=\"end\">\(escape(last))</text>"
    }

    /// Columns over time; each series stacked on the previous one.
    static func columns(_ label: String, times: [String], series: [(name: String, cls: String, values: [Int64])]) -> String {
        let n = max(1, times.count)
        let totals = (0..<times.count).map { i in series.reduce(0) { $0 + $1.values[i] } }
        let high = Double(max(1, totals.max() ?? 1))
        let w = plotWidth / Double(n)
        var out = open(label) + frame(high: high, first: times.first ?? "", last: times.last ?? "")
        for i in 0..<times.count {
            var base = 0.0
            for s in series where s.values[i] > 0 {
                let h = Double(s.values[i]) / high * plotHeight
                let y = top + plotHeight - base - h
                out += "<rect class=\"\(s.cls)\" x=\"\(f(left + Double(i) * w))\" y=\"\(f(y))\" width=\"\(f(max(1, w - 1)))\" height=\"\(f(h))\">" +
                    "<title>\(escape(times[i])): \(escape(s.name)) \(s.values[i])</title></rect>"
                base += h
            }
        }
        return out + "</svg>"
    }

    /// Horizontal bars, one per labelled value, largest first.
    static func bars(_ label: String, _ items: [(String, Int64)], cls: String = "bar") -> String {
        let rowHeight = 16.0
        let h = max(40, Double(items.count) * rowHeight + 8)
        let high = Double(max(1, items.map(\.1).max() ?? 1))
        let labelWidth = 150.0
        var out = "<svg class=\"chart\" viewBox=\"0 0 \(Int(width)) \(Int(h))\" role=\"img\" aria-label=\"\(escape(label))\" xmlns=\"http://www.w3.org/2000/svg\">"
        for (i, item) in items.enumerated() {
            let y = 4 + Double(i) * rowHeight
            let w = Double(item.1) / high * (width - labelWidth - 60)
            let name = item.0.count > 24 ? String(item.0.prefix(23)) + "…" : item.0
            out += "<text class=\"label\" x=\"\(f(labelWidth - 6))\" y=\"\(f(y + 11))\" text-anchor=\"end\">\(escape(name))</text>" +
                "<rect class=\"\(cls)\" x=\"\(f(labelWidth))\" y=\"\(f(y + 2))\" width=\"\(f(max(1, w)))\" height=\"\(f(rowHeight - 4))\"><title>\(escape(item.0)): \(item.1)</title></rect>" +
                "<text class=\"value\" x=\"\(f(labelWidth + w + 4))\" y=\"\(f(y + 11))\">\(item.1)</text>"
        }
        return out + "</svg>"
    }

    /// A line of values with the band the baseline expects, and the points outside it marked.
    static func band(_ label: String, times: [String], values: [Double], low: [Double?], high: [Double?], centre: [Double?]) -> String {
        let height = smallHeight, plotHeight = smallHeight - top - bottom
        let all = values + low.compactMap { $0 } + high.compactMap { $0 }
        var lo = all.min() ?? 0, hi = all.max() ?? 1
        if hi - lo < 1e-9 { hi += 1; lo -= 1 }
        let n = max(2, values.count)
        func x(_ i: Int) -> Double { left + Double(i) / Double(n - 1) * plotWidth }
        func y(_ v: Double) -> Double { top + (hi - v) / (hi - lo) * plotHeight }
        var out = open(label, height: height) + frame(high: hi, low: lo, first: times.first ?? "", last: times.last ?? "", height: height)
        // The band, as one polygon per run of points that have one.
        var run: [Int] = []
        func flush() {
            guard run.count >= 1 else { return }
            let upper = run.map { "\(f(x($0))),\(f(y(high[$0]!)))" }
            let lower = run.reversed().map { "\(f(x($0))),\(f(y(low[$0]!)))" }
            out += "<polygon class=\"band\" points=\"\((upper + lower).joined(separator: " "))\"/>"
            let mid = run.map { "\(f(x($0))),\(f(y(centre[$0] ?? (low[$0]! + high[$0]!) / 2)))" }
            out += "<polyline class=\"centre\" points=\"\(mid.joined(separator: " "))\"/>"
            run.removeAll()
        }
        for i in values.indices { if low[i] != nil && high[i] != nil { run.append(i) } else { flush() } }
        flush()
        out += "<polyline class=\"line\" points=\"\(values.indices.map { "\(f(x($0))),\(f(y(values[$0])))" }.joined(separator: " "))\"/>"
        for i in values.indices {
            let outside = (low[i].map { values[i] < $0 } ?? false) || (high[i].map { values[i] > $0 } ?? false)
            out += "<circle class=\"\(outside ? "dot out" : "dot")\" cx=\"\(f(x(i)))\" cy=\"\(f(y(values[i])))\" r=\"\(outside ? 3 : 1.5)\">" +
                "<title>\(escape(times[i])): \(escape(number(values[i])))\(outside ? " (outside the baseline band)" : "")</title></circle>"
        }
        return out + "</svg>"
    }
}
