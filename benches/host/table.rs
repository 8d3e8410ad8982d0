//! Statistics (median, min–max) and the one markdown table the bench
//! prints, with each row's target and whether it was met.

use crate::BIN;

#[derive(Clone)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

pub fn stat(v: &[f64]) -> Option<Stat> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len();
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    Some(Stat {
        median,
        min: s[0],
        max: s[n - 1],
        n,
    })
}

#[derive(Clone, Copy)]
pub enum Target {
    None,
    /// median ≤ x
    AtMost(f64),
    /// median ≥ x
    AtLeast(f64),
}

pub struct Row {
    pub group: String,
    pub name: String,
    pub unit: String,
    pub stat: Option<Stat>,
    /// Overrides the value cells (e.g. "10/10").
    pub text: Option<String>,
    pub decimals: usize,
    pub target: Target,
    pub target_text: String,
    /// Overrides the computed status.
    pub status: Option<String>,
}

#[derive(Default)]
pub struct Table {
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

impl Table {
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        group: &str,
        name: &str,
        unit: &str,
        values: &[f64],
        decimals: usize,
        target: Target,
        target_text: &str,
    ) {
        self.rows.push(Row {
            group: group.into(),
            name: name.into(),
            unit: unit.into(),
            stat: stat(values),
            text: None,
            decimals,
            target,
            target_text: target_text.into(),
            status: None,
        });
    }
    pub fn add_text(
        &mut self,
        group: &str,
        name: &str,
        text: String,
        target_text: &str,
        status: Option<bool>,
    ) {
        self.rows.push(Row {
            group: group.into(),
            name: name.into(),
            unit: String::new(),
            stat: None,
            text: Some(text),
            decimals: 0,
            target: Target::None,
            target_text: target_text.into(),
            status: Some(match status {
                Some(true) => "**met**".into(),
                Some(false) => "**MISSED**".into(),
                None => "info".into(),
            }),
        });
    }
    pub fn fail(&mut self, group: &str, what: &str, err: &str) {
        eprintln!("[bench] {group}: FAILED: {err}");
        self.rows.push(Row {
            group: group.into(),
            name: what.into(),
            unit: String::new(),
            stat: None,
            text: Some(format!(
                "FAILED: {}",
                err.replace('|', "/").replace('\n', " ")
            )),
            decimals: 0,
            target: Target::None,
            target_text: String::new(),
            status: Some("**FAILED**".into()),
        });
    }

    pub fn print(&self, machine: &str, runs: usize, wall: f64) {
        let mut out = String::new();
        out.push_str("\n## agent-rpc host benchmark (`cargo bench`)\n\n");
        out.push_str(machine);
        out.push_str(&format!(
            "\nBinary: `{BIN}`. Cells: median (min–max) over n runs (default n = {runs}). Total bench wall time {wall:.0} s.\n\n"
        ));
        out.push_str("| # | measurement | median | min – max | n | target | status |\n");
        out.push_str("|---|---|---|---|---|---|---|\n");
        for r in &self.rows {
            let (med, range, n) = match (&r.text, &r.stat) {
                (Some(t), _) => (t.clone(), String::new(), String::new()),
                (None, Some(s)) => {
                    let f = |x: f64| fmt_num(x, r.decimals);
                    (
                        format!("{} {}", f(s.median), r.unit),
                        format!("{} – {}", f(s.min), f(s.max)),
                        s.n.to_string(),
                    )
                }
                (None, None) => ("n/a".into(), String::new(), String::new()),
            };
            let status = r
                .status
                .clone()
                .unwrap_or_else(|| match (&r.stat, r.target) {
                    (Some(s), Target::AtMost(x)) => met(s.median <= x),
                    (Some(s), Target::AtLeast(x)) => met(s.median >= x),
                    (None, Target::AtMost(_) | Target::AtLeast(_)) => "**MISSED**".into(),
                    _ => "info".into(),
                });
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                r.group, r.name, med, range, n, r.target_text, status
            ));
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for n in &self.notes {
                out.push_str(&format!("- {n}\n"));
            }
        }
        println!("{out}");
    }
}

pub fn met(ok: bool) -> String {
    if ok {
        "**met**".into()
    } else {
        "**MISSED**".into()
    }
}

pub fn fmt_num(x: f64, decimals: usize) -> String {
    let s = format!("{x:.decimals$}");
    if decimals == 0 && x.abs() >= 10_000.0 {
        // thousands separators for large integers
        let neg = s.starts_with('-');
        let digits: Vec<char> = s.trim_start_matches('-').chars().collect();
        let mut o = String::new();
        for (i, c) in digits.iter().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                o.push(',');
            }
            o.push(*c);
        }
        return if neg { format!("-{o}") } else { o };
    }
    s
}
