//! The SVG plot `bt86 bench --nano --plot` writes: grouped bars per
//! nanobenchmark, one colour per runner and three for the paper's figures,
//! ns per operation on a log scale (hand-written SVG, no dependency).

use super::nano::{find, fmt_ns, NanoCell};
use super::Runner;
use std::fmt::Write as _;

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A bar chart as SVG: a group of bars per benchmark, one colour per
/// runner and three for the paper's figures, ns/op on a log scale.
pub fn svg(cells: &[NanoCell], runners: &[Runner]) -> String {
    let colour = |r: Runner| match r.name() {
        "interp" => "#4e79a7",
        "bt" => "#f28e2b",
        "trap" => "#e15759",
        "trap-sim" => "#76b7b2",
        "qemu" => "#59a14f",
        _ => "#edc948",
    };
    const PAPER: [(&str, &str); 3] =
        [("P4 native (paper)", "#bab0ac"), ("P4 BT VMM (paper)", "#9c755f"), ("P4 VT-x VMM (paper)", "#b07aa1")];
    let mut names: Vec<&str> = Vec::new();
    for c in cells {
        if !names.contains(&c.bench) {
            names.push(c.bench);
        }
    }
    // The series: (label, colour, value per benchmark).
    let mut series: Vec<(String, &str, Vec<Option<f64>>)> = Vec::new();
    for &r in runners {
        let values: Vec<Option<f64>> = names
            .iter()
            .map(|n| cells.iter().find(|c| c.bench == *n && c.runner == r && c.error.is_none()).map(|c| c.ns))
            .collect();
        let label = if values.iter().all(Option::is_none) { format!("{} (n/a)", r.name()) } else { r.name().into() };
        series.push((label, colour(r), values));
    }
    for (k, (label, colour)) in PAPER.iter().enumerate() {
        let values =
            names.iter().map(|n| find(n).and_then(|b| b.paper).map(|p| [p.native, p.bt, p.vt][k].ns())).collect();
        series.push((label.to_string(), colour, values));
    }
    let all: Vec<f64> =
        series.iter().flat_map(|s| s.2.iter().flatten().copied()).filter(|v| v.is_finite() && *v > 0.0).collect();
    let lo_dec = all.iter().copied().fold(f64::INFINITY, f64::min).log10().floor();
    let hi_dec = all.iter().copied().fold(f64::NEG_INFINITY, f64::max).log10().ceil();
    let (lo_dec, hi_dec) = if all.is_empty() { (0.0, 1.0) } else { (lo_dec, hi_dec.max(lo_dec + 1.0)) };

    let bar_w = 12.0;
    let group_w = bar_w * series.len() as f64 + 20.0;
    let (left, plot_h) = (70.0, 360.0);
    let plot_w = (group_w * names.len().max(1) as f64).max(660.0);
    let width = left + plot_w + 20.0;
    // The legend, wrapped to the width: (x, row) per series.
    let mut legend = Vec::new();
    let (mut lx, mut row) = (left, 0);
    for (label, _, _) in &series {
        let w = 34.0 + 6.5 * label.chars().count() as f64;
        if lx + w > width && lx > left {
            lx = left;
            row += 1;
        }
        legend.push((lx, row));
        lx += w;
    }
    let top = 50.0 + 16.0 * (row + 1) as f64;
    let height = top + plot_h + 50.0;
    let y = |v: f64| top + plot_h * (1.0 - (v.log10() - lo_dec) / (hi_dec - lo_dec));

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect x="0" y="0" width="{width:.0}" height="{height:.0}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="16" font-size="13">bt86 nanobenchmarks: ns per operation (log scale), with Adams &amp; Agesen's P4 figures at 3.8 GHz</text>"#
    );
    // Legend.
    for ((label, colour, _), (lx, row)) in series.iter().zip(&legend) {
        let ly = 28.0 + 16.0 * *row as f64;
        let _ = writeln!(s, r#"<rect x="{lx:.0}" y="{ly:.0}" width="10" height="10" fill="{colour}"/>"#);
        let _ = writeln!(s, r#"<text x="{:.0}" y="{:.0}">{}</text>"#, lx + 13.0, ly + 9.0, xml_escape(label));
    }
    // Decades.
    let mut d = lo_dec;
    while d <= hi_dec {
        let v = 10f64.powi(d as i32);
        let yy = y(v);
        let _ =
            writeln!(s, r##"<line x1="{left}" y1="{yy:.1}" x2="{:.0}" y2="{yy:.1}" stroke="#ddd"/>"##, left + plot_w);
        let label = if v >= 1000.0 { format!("{} µs", v / 1000.0) } else { format!("{v} ns") };
        let _ = writeln!(s, r#"<text x="{:.0}" y="{:.1}" text-anchor="end">{label}</text>"#, left - 6.0, yy + 4.0);
        d += 1.0;
    }
    let base = top + plot_h;
    for (g, name) in names.iter().enumerate() {
        let spacing = plot_w / names.len() as f64;
        let gx = left + spacing * g as f64 + (spacing - bar_w * series.len() as f64) / 2.0;
        for (k, (label, colour, values)) in series.iter().enumerate() {
            if let Some(v) = values[g].filter(|v| v.is_finite() && *v > 0.0) {
                let top_y = y(v).min(base - 1.0);
                let _ = writeln!(
                    s,
                    r#"<rect x="{:.1}" y="{top_y:.1}" width="{:.1}" height="{:.1}" fill="{colour}"><title>{} {}: {} ns</title></rect>"#,
                    gx + bar_w * k as f64,
                    bar_w - 1.0,
                    base - top_y,
                    xml_escape(name),
                    xml_escape(label),
                    fmt_ns(v)
                );
            }
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.0}" text-anchor="middle">{}</text>"#,
            gx + bar_w * series.len() as f64 / 2.0,
            base + 16.0,
            xml_escape(name)
        );
    }
    let _ = writeln!(s, r##"<line x1="{left}" y1="{base}" x2="{:.0}" y2="{base}" stroke="#333"/>"##, left + plot_w);
    let _ = writeln!(s, r##"<line x1="{left}" y1="{top}" x2="{left}" y2="{base}" stroke="#333"/>"##);
    s += "</svg>\n";
    s
}
