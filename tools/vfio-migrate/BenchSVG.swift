// Small SVG charts for the bench report, drawn by hand so the page needs no script and no
// external asset: a line chart (throughput over time per channel), a bar chart (bytes left
// per pre-copy round) and a stacked bar (the downtime's parts). Axes carry units and ticks
// at round numbers; every series is named in a legend.
import Foundation

enum SVG {
    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
    static let width = 720.0
    static let height = 320.0
    static let margin = (left: 70.0, right: 20.0, top: 20.0, bottom: 60.0)

    static func escape(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }

    static func number(_ v: Double) -> String { String(format: "%.1f", v) }

    /// Tick values from 0 to at least `maximum` at a round step (1, 2 or 5 times a power of ten).
    static func ticks(upTo maximum: Double, count: Int = 5) -> [Double] {
        guard maximum > 0, maximum.isFinite else { return [0, 1] }
        let raw = maximum / Double(count)
        let power = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * power }.first { $0 >= raw } ?? 10 * power
        // Up to the first tick at or past the maximum, so no point lies beyond the axis.
        var values: [Double] = [0]
        while values.last! < maximum * (1 - 1e-9) { values.append(Double(values.count) * step) }
        return values
    }

    static func label(_ v: Double) -> String {
        if v == 0 { return "0" }
        if abs(v) >= 10 { return String(format: "%.0f", v) }
        if abs(v) >= 1 { return String(format: "%.1f", v) }
        return String(format: "%.2f", v)
    }

    /// A tick's label with as many decimals as the step between ticks needs (0.05 -> 0.05,
    /// not 0.1), so neighbouring ticks never read the same.
    static func label(_ v: Double, step: Double) -> String {
        guard v != 0, step > 0, step.isFinite else { return "0" }
        let decimals = max(0, Int(-floor(log10(step) + 1e-9)))
        return String(format: "%.\(decimals)f", v)
    }

    private static func open(_ title: String, height: Double = height) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(number(width)) \(number(height))\" width=\"\(number(width))\" height=\"\(number(height))\" role=\"img\" aria-label=\"\(escape(title))\" font-family=\"sans-serif\" font-size=\"12\">"
    }

    /// Axes, grid and tick labels for a plot area; returns the SVG and the two scales.
    private static func axes(xMax: Double, yMax: Double, xLabel: String, yLabel: String, xTicks: [Double]? = nil) -> (String, (Double) -> Double, (Double) -> Double) {
        let plotW = width - margin.left - margin.right
        let plotH = height - margin.top - margin.bottom
        let yt = ticks(upTo: yMax)
        let xt = xTicks ?? ticks(upTo: xMax)
        let yTop = yt.last ?? 1
        let xRight = xTicks == nil ? (xt.last ?? 1) : xMax
        let x = { (v: Double) in margin.left + (xRight > 0 ? v / xRight : 0) * plotW }
        let y = { (v: Double) in margin.top + plotH - (yTop > 0 ? v / yTop : 0) * plotH }
        var s = ""
        for t in yt {
            s += "<line x1=\"\(number(margin.left))\" y1=\"\(number(y(t)))\" x2=\"\(number(margin.left + plotW))\" y2=\"\(number(y(t)))\" stroke=\"#ddd\"/>"
            s += "<text x=\"\(number(margin.left - 6))\" y=\"\(number(y(t) + 4))\" text-anchor=\"end\">\(label(t, step: yt.count > 1 ? yt[1] : 1))</text>"
        }
        for t in xt {
            s += "<line x1=\"\(number(x(t)))\" y1=\"\(number(margin.top + plotH))\" x2=\"\(number(x(t)))\" y2=\"\(number(margin.top + plotH + 5))\" stroke=\"#333\"/>"
            s += "<text x=\"\(number(x(t)))\" y=\"\(number(margin.top + plotH + 18))\" text-anchor=\"middle\">\(label(t, step: xt.count > 1 ? xt[1] : 1))</text>"
        }
        s += "<line x1=\"\(number(margin.left))\" y1=\"\(number(margin.top + plotH))\" x2=\"\(number(margin.left + plotW))\" y2=\"\(number(margin.top + plotH))\" stroke=\"#333\"/>"
        s += "<line x1=\"\(number(margin.left))\" y1=\"\(number(margin.top))\" x2=\"\(number(margin.left))\" y2=\"\(number(margin.top + plotH))\" stroke=\"#333\"/>"
        s += "<text x=\"\(number(margin.left + plotW / 2))\" y=\"\(number(height - 22))\" text-anchor=\"middle\">\(escape(xLabel))</text>"
        s += "<text transform=\"translate(16 \(number(margin.top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\">\(escape(yLabel))</text>"
        return (s, x, y)
    }

    /// A legend row under the x axis label.
    private static func legend(_ names: [String]) -> String {
        var s = ""
        var at = margin.left
        for (i, name) in names.enumerated() {
            s += "<rect x=\"\(number(at))\" y=\"\(number(height - 12))\" width=\"12\" height=\"10\" fill=\"\(palette[i % palette.count])\"/>"
            s += "<text x=\"\(number(at + 16))\" y=\"\(number(height - 3))\">\(escape(name))</text>"
            at += 24 + Double(name.count) * 7
        }
        return s
    }

    static func lineChart(title: String, series: [(name: String, points: [(Double, Double)])], xLabel: String, yLabel: String) -> String {
        let xMax = series.flatMap { $0.points.map(\.0) }.max() ?? 1
        let yMax = series.flatMap { $0.points.map(\.1) }.max() ?? 1
        let (frame, x, y) = axes(xMax: xMax, yMax: yMax, xLabel: xLabel, yLabel: yLabel)
        var s = open(title) + frame
        for (i, line) in series.enumerated() where !line.points.isEmpty {
            let path = line.points.map { "\(number(x($0.0))),\(number(y($0.1)))" }.joined(separator: " ")
            s += "<polyline fill=\"none\" stroke=\"\(palette[i % palette.count])\" stroke-width=\"2\" points=\"\(path)\"/>"
        }
        return s + legend(series.map(\.name)) + "</svg>"
    }

    static func barChart(title: String, bars: [(label: String, value: Double)], xLabel: String, yLabel: String) -> String {
        let yMax = bars.map(\.value).max() ?? 1
        let (frame, _, y) = axes(xMax: Double(bars.count), yMax: yMax, xLabel: xLabel, yLabel: yLabel, xTicks: [])
        var s = open(title) + frame
        let plotW = width - margin.left - margin.right
        let slot = plotW / Double(max(1, bars.count))
        let every = max(1, bars.count / 16)
        for (i, bar) in bars.enumerated() {
            let left = margin.left + Double(i) * slot + slot * 0.15
            let top = y(bar.value)
            s += "<rect x=\"\(number(left))\" y=\"\(number(top))\" width=\"\(number(slot * 0.7))\" height=\"\(number(y(0) - top))\" fill=\"\(palette[0])\"><title>\(escape(bar.label)): \(label(bar.value))</title></rect>"
            if i % every == 0 {
                s += "<text x=\"\(number(left + slot * 0.35))\" y=\"\(number(y(0) + 18))\" text-anchor=\"middle\">\(escape(bar.label))</text>"
            }
        }
        return s + "</svg>"
    }

    /// One horizontal bar split into named parts, each labelled with its value below the bar
    /// (a part too narrow for its label is named in the legend only).
    static func stackedBar(title: String, parts: [(name: String, value: Double)], unit: String) -> String {
        let total = parts.reduce(0) { $0 + $1.value }
        let h = 170.0
        var s = open(title, height: h)
        let plotW = width - margin.left - margin.right
        var at = margin.left
        for (i, part) in parts.enumerated() {
            let w = total > 0 ? part.value / total * plotW : 0
            s += "<rect x=\"\(number(at))\" y=\"30\" width=\"\(number(w))\" height=\"40\" fill=\"\(palette[i % palette.count])\"><title>\(escape(part.name)): \(label(part.value)) \(escape(unit))</title></rect>"
            if w > 60 { s += "<text x=\"\(number(at + w / 2))\" y=\"55\" text-anchor=\"middle\" fill=\"#fff\">\(label(part.value)) \(escape(unit))</text>" }
            at += w
        }
        s += "<text x=\"\(number(margin.left))\" y=\"20\">total \(label(total)) \(escape(unit))</text>"
        var row = 0.0
        var column = margin.left
        for (i, part) in parts.enumerated() {
            let text = "\(part.name): \(label(part.value)) \(unit)"
            let w = 24 + Double(text.count) * 7
            if column + w > width - margin.right {
                column = margin.left
                row += 20
            }
            s += "<rect x=\"\(number(column))\" y=\"\(number(92 + row))\" width=\"12\" height=\"10\" fill=\"\(palette[i % palette.count])\"/>"
            s += "<text x=\"\(number(column + 16))\" y=\"\(number(101 + row))\">\(escape(text))</text>"
            column += w
        }
        return s + "</svg>"
    }
}
