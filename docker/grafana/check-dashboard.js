#!/usr/bin/env node
// Checks the provisioned Grafana dashboard against the metrics chatoxide exposes, so that a
// renamed or removed metric cannot leave a panel silently empty. Node, no dependencies.
//
//   node docker/grafana/check-dashboard.js                      the metric names the dashboard uses
//   node docker/grafana/check-dashboard.js --panels             the same, panel by panel
//   node docker/grafana/check-dashboard.js --metrics FILE       fails unless each name is in FILE
//   node docker/grafana/check-dashboard.js NAME...              fails unless each name is listed
//
// FILE (`-` for standard input) is either one metric name per line or a scrape of /metrics as
// it is (`curl -s localhost:3000/metrics > FILE`): `# HELP`/`# TYPE` lines and sample lines are
// both read. A name the dashboard uses passes when it is listed, or when it is a histogram's
// `_bucket`, `_sum` or `_count` series of a listed name. `--dashboard PATH` checks another file.
//
// Always checked, with or without a list: the JSON parses, its uid is "chatoxide", panel ids
// are unique, every panel and query uses the datasource uid "prometheus", every query has an
// expression. Exit 0 when all is well, 1 on a problem, 2 on bad usage.

"use strict";

const fs = require("fs");
const path = require("path");

const DEFAULT_DASHBOARD = path.join(__dirname, "dashboards", "chatoxide.json");
const DATASOURCE_UID = "prometheus";
const DASHBOARD_UID = "chatoxide";

// Series Prometheus makes itself for every target: never in /metrics.
const BUILTIN = new Set(["up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_series_added"]);
// The standard process metrics (`process_*`: memory, open files, CPU) are optional: the
// dashboard keeps their panels for exporters that have them. A missing one is reported, not a
// failure.
const isOptional = (name) => name.startsWith("process_");
const HISTOGRAM_SUFFIXES = ["_bucket", "_sum", "_count"];

const KEYWORDS = new Set([
  "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
  "and", "or", "unless", "offset", "inf", "nan",
]);

// The metric names in one PromQL expression: identifiers that are neither functions nor
// aggregations (followed by "("), keywords, label names (inside {…} or by/without/on/ignoring
// lists), strings, durations, nor Grafana variables.
function metricNames(expr) {
  let s = String(expr);
  s = s.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""'); // strings
  s = s.replace(/\$\{[^}]*\}|\$\w+|\[\[\w+\]\]/g, " "); // Grafana variables
  s = s.replace(/\{[^}]*\}/g, " "); // label matchers
  s = s.replace(/\[[^\]]*\]/g, " "); // ranges and subqueries
  s = s.replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " "); // label lists
  s = s.replace(/#[^\n]*/g, " "); // comments
  const names = new Set();
  const re = /[A-Za-z_:][A-Za-z0-9_:]*/g;
  let m;
  while ((m = re.exec(s))) {
    const before = m.index > 0 ? s[m.index - 1] : "";
    if (/[0-9.]/.test(before)) continue; // 1e3, 5m, 0x1f
    const after = s.slice(re.lastIndex).match(/^\s*(.)/);
    if (after && after[1] === "(") continue; // a function or an aggregation
    if (KEYWORDS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return names;
}

// The PromQL inside a Grafana template variable's query, if any.
function variableExpr(v) {
  let q = v.query;
  if (q && typeof q === "object") q = q.query;
  if (typeof q !== "string" || v.type !== "query") return null;
  const lv = q.match(/^\s*label_values\s*\(([\s\S]*)\)\s*$/);
  if (lv) {
    const inner = lv[1];
    const comma = topLevelLastComma(inner);
    return comma < 0 ? null : inner.slice(0, comma); // label_values(label) names no metric
  }
  const qr = q.match(/^\s*query_result\s*\(([\s\S]*)\)\s*$/);
  if (qr) return qr[1];
  if (/^\s*(label_names|metrics)\s*\(/.test(q)) return null;
  return null;
}

function topLevelLastComma(s) {
  let depth = 0;
  let last = -1;
  let quote = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      if (c === "\\") i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'" || c === "`") quote = c;
    else if ("({[".includes(c)) depth++;
    else if (")}]".includes(c)) depth--;
    else if (c === "," && depth === 0) last = i;
  }
  return last;
}

// Every panel with the row it sits under (a collapsed row holds its panels itself).
function flattenPanels(dashboard) {
  const out = [];
  let row = null;
  const visit = (p, rowTitle) => {
    if (p.type === "row") {
      row = p.title;
      for (const child of p.panels || []) visit(child, p.title);
      return;
    }
    out.push({ row: rowTitle, panel: p });
  };
  for (const p of dashboard.panels || []) visit(p, p.type === "row" ? null : row);
  return out;
}

// Reads the dashboard; returns { dashboard, panels: [{row, title, type, unit, exprs, metrics, panel}],
// variables: [{name, expr, metrics}], problems: [string] }.
function analyse(file = DEFAULT_DASHBOARD) {
  const problems = [];
  const dashboard = JSON.parse(fs.readFileSync(file, "utf8"));
  if (dashboard.uid !== DASHBOARD_UID) problems.push(`uid is ${JSON.stringify(dashboard.uid)}, not "${DASHBOARD_UID}"`);
  const ids = new Map();
  const seeId = (p) => {
    if (p.id === undefined) problems.push(`panel "${p.title}" has no id`);
    else if (ids.has(p.id)) problems.push(`panel id ${p.id} is used by "${ids.get(p.id)}" and "${p.title}"`);
    else ids.set(p.id, p.title);
  };
  const panels = [];
  for (const p of dashboard.panels || []) {
    seeId(p);
    for (const c of p.panels || []) seeId(c);
  }
  for (const { row, panel } of flattenPanels(dashboard)) {
    const where = `panel "${panel.title}"`;
    if (!panel.gridPos) problems.push(`${where} has no gridPos`);
    if (!panel.datasource || panel.datasource.uid !== DATASOURCE_UID) {
      problems.push(`${where}: datasource is not uid "${DATASOURCE_UID}"`);
    }
    const targets = panel.targets || [];
    if (targets.length === 0 && panel.type !== "text") problems.push(`${where} has no queries`);
    const refIds = new Set();
    const exprs = [];
    const metrics = new Set();
    for (const t of targets) {
      if (!t.datasource || t.datasource.uid !== DATASOURCE_UID) {
        problems.push(`${where}, query ${t.refId}: datasource is not uid "${DATASOURCE_UID}"`);
      }
      if (!t.refId || refIds.has(t.refId)) problems.push(`${where}: missing or repeated refId ${t.refId}`);
      refIds.add(t.refId);
      if (typeof t.expr !== "string" || !t.expr.trim()) {
        problems.push(`${where}, query ${t.refId}: no expr`);
        continue;
      }
      exprs.push(t.expr);
      const names = metricNames(t.expr);
      if (names.size === 0) problems.push(`${where}, query ${t.refId}: no metric in ${t.expr}`);
      for (const n of names) metrics.add(n);
    }
    const unit = panel.fieldConfig && panel.fieldConfig.defaults ? panel.fieldConfig.defaults.unit : undefined;
    panels.push({ row, title: panel.title, type: panel.type, unit, exprs, metrics: [...metrics].sort(), panel });
  }
  const variables = [];
  for (const v of (dashboard.templating && dashboard.templating.list) || []) {
    if (v.type === "query" && (!v.datasource || v.datasource.uid !== DATASOURCE_UID)) {
      problems.push(`variable $${v.name}: datasource is not uid "${DATASOURCE_UID}"`);
    }
    const expr = variableExpr(v);
    variables.push({ name: v.name, expr, metrics: expr ? [...metricNames(expr)].sort() : [] });
  }
  return { dashboard, panels, variables, problems };
}

function allMetrics(result) {
  const names = new Set();
  for (const p of result.panels) p.metrics.forEach((n) => names.add(n));
  for (const v of result.variables) v.metrics.forEach((n) => names.add(n));
  return [...names].sort();
}

// Metric names in a name-per-line list or a /metrics scrape.
function readNames(text) {
  const names = new Set();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line) continue;
    let m = line.match(/^#\s*(?:TYPE|HELP)\s+([A-Za-z_:][A-Za-z0-9_:]*)/);
    if (m) {
      names.add(m[1]);
      continue;
    }
    if (line.startsWith("#")) continue;
    m = line.match(/^[A-Za-z_:][A-Za-z0-9_:]*/);
    if (m) names.add(m[0]);
  }
  return names;
}

function isKnown(name, known) {
  if (known.has(name) || BUILTIN.has(name)) return true;
  for (const suffix of HISTOGRAM_SUFFIXES) {
    if (name.endsWith(suffix) && known.has(name.slice(0, -suffix.length))) return true;
  }
  return false;
}

function main(argv) {
  let file = DEFAULT_DASHBOARD;
  let showPanels = false;
  let listed = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--dashboard") file = argv[++i];
    else if (a === "--panels") showPanels = true;
    else if (a === "--metrics") {
      const f = argv[++i];
      if (!f) return usage("--metrics needs a file");
      const text = fs.readFileSync(f === "-" ? 0 : f, "utf8");
      listed = listed || new Set();
      readNames(text).forEach((n) => listed.add(n));
    } else if (a === "-h" || a === "--help") return usage();
    else if (a.startsWith("-")) return usage(`unknown option ${a}`);
    else {
      listed = listed || new Set();
      a.split(/[\s,]+/).filter(Boolean).forEach((n) => listed.add(n));
    }
  }
  if (!file) return usage("--dashboard needs a path");

  let result;
  try {
    result = analyse(file);
  } catch (e) {
    console.error(`check-dashboard: ${file}: ${e.message}`);
    return 1;
  }
  const names = allMetrics(result);
  const rel = path.relative(process.cwd(), file) || file;

  if (showPanels) {
    for (const p of result.panels) {
      console.log(`${p.row || "(no row)"} / ${p.title} [${p.type}]: ${p.metrics.join(" ")}`);
    }
    for (const v of result.variables) console.log(`variable $${v.name}: ${v.metrics.join(" ") || "(none)"}`);
  } else if (!listed) {
    for (const n of names) console.log(n);
  }

  let failed = false;
  for (const p of result.problems) {
    console.error(`check-dashboard: ${rel}: ${p}`);
    failed = true;
  }
  if (listed) {
    const missing = names.filter((n) => !isKnown(n, listed) && !isOptional(n));
    const optionalMissing = names.filter((n) => !isKnown(n, listed) && isOptional(n));
    for (const n of optionalMissing) console.error(`check-dashboard: optional metric not exposed: ${n}`);
    for (const n of missing) {
      const users = result.panels.filter((p) => p.metrics.includes(n)).map((p) => `"${p.title}"`);
      const vars = result.variables.filter((v) => v.metrics.includes(n)).map((v) => `$${v.name}`);
      console.error(`check-dashboard: ${n} is not exposed; used by ${[...users, ...vars].join(", ")}`);
    }
    if (missing.length) failed = true;
    else if (!failed) {
      console.log(`check-dashboard: ${rel}: ${names.length} metric names, all exposed` +
        (optionalMissing.length ? ` (${optionalMissing.length} optional not)` : ""));
    }
  }
  return failed ? 1 : 0;
}

function usage(error) {
  const text = "usage: node docker/grafana/check-dashboard.js [--dashboard PATH] [--panels] [--metrics FILE|-]... [NAME...]";
  if (error) {
    console.error(`check-dashboard: ${error}\n${text}`);
    return 2;
  }
  console.log(text);
  return 0;
}

module.exports = { analyse, allMetrics, metricNames, readNames, isKnown, isOptional, BUILTIN };

if (require.main === module) process.exitCode = main(process.argv.slice(2));
