//! Metric math: the expressions of GetMetricData's queries. Arithmetic (`+ - * / ^`, unary
//! minus) over time series, arrays of time series and scalars; the functions `SUM`, `AVG`,
//! `MIN`, `MAX`, `METRICS()`, `METRICS("s")`, `ABS`, `FILL`, `RATE`, `DIFF`, `PERIOD`.
//!
//! Alignment follows CloudWatch: an operation between two time series is computed at the
//! timestamps both have; `SUM(array)` (and `AVG`, `MIN`, `MAX`) combine, at every
//! timestamp any series has, the values present there; the same functions of a single
//! time series are a scalar (of all its values).
//!
//! Expressions come from requests, so nothing here recurses deeper than the parser allows:
//! parentheses and calls nest at most [`MAX_DEPTH`] levels, and chains of operators
//! (`a + b + …`, `a ^ b ^ …`, `- - a`) are flat nodes, evaluated and dropped with loops.
//! Every time series an evaluation makes is charged to its [`Context`] first (or, when
//! its size is bounded by inputs already charged, right after), so one request's work
//! has a ceiling.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

/// How deeply parentheses and function calls may nest.
pub const MAX_DEPTH: usize = 64;

/// One time series: its label, period and (timestamp in seconds, value) points,
/// ascending.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Its label.
    pub label: String,
    /// Its period, seconds.
    pub period: i64,
    /// Its points (shared: a query's result is read by every expression naming it).
    pub points: Arc<[(i64, f64)]>,
}

/// What an expression evaluates to.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number.
    Scalar(f64),
    /// One time series.
    Series(Series),
    /// Several.
    Array(Vec<Series>),
}

/// What expressions can name.
pub trait Context {
    /// The value of the query `id` (`None`: no such query).
    fn query(&mut self, id: &str) -> Result<Option<Value>, String>;
    /// The time series of every metric query whose id contains `filter`, in request order.
    fn metrics(&mut self, filter: &str) -> Result<Vec<Series>, String>;
    /// Every timestamp of the request's grid for `period`.
    fn grid(&self, period: i64) -> Vec<i64>;
    /// Accounts for `points` datapoints about to be (or just) made; an error when the
    /// request's budget is spent.
    fn charge(&mut self, points: usize) -> Result<(), String>;
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    Ident(String),
    Str(String),
    Op(char),
    Open,
    Close,
    Comma,
}

fn tokens(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                out.push(Token::Open);
                i += 1
            }
            ')' => {
                out.push(Token::Close);
                i += 1
            }
            ',' => {
                out.push(Token::Comma);
                i += 1
            }
            '+' | '-' | '*' | '/' | '^' => {
                out.push(Token::Op(c));
                i += 1
            }
            '"' => {
                let start = i + 1;
                let end = chars[start..]
                    .iter()
                    .position(|&c| c == '"')
                    .ok_or("Unterminated string")?;
                out.push(Token::Str(chars[start..start + end].iter().collect()));
                i = start + end + 1;
            }
            c if c.is_ascii_digit() || c == '.' => {
                let start = i;
                while chars
                    .get(i)
                    .is_some_and(|c| c.is_ascii_digit() || *c == '.')
                {
                    i += 1;
                }
                // An exponent (`1e3`, `2E-4`).
                if matches!(chars.get(i), Some('e' | 'E')) {
                    let mut j = i + 1;
                    if matches!(chars.get(j), Some('+' | '-')) {
                        j += 1;
                    }
                    if chars.get(j).is_some_and(char::is_ascii_digit) {
                        i = j;
                        while chars.get(i).is_some_and(char::is_ascii_digit) {
                            i += 1;
                        }
                    }
                }
                let text: String = chars[start..i].iter().collect();
                let number = text.parse().map_err(|_| format!("Invalid number {text}"))?;
                out.push(Token::Number(number));
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while chars
                    .get(i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
                {
                    i += 1;
                }
                out.push(Token::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(format!("Unexpected character '{other}'")),
        }
    }
    Ok(out)
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A number.
    Number(f64),
    /// A string argument.
    Str(String),
    /// A query's id, or a keyword argument (`REPEAT`).
    Ident(String),
    /// `-x`.
    Negate(Box<Expr>),
    /// `a op b op c …`, left associative, all of one precedence (`+ -` or `* /`).
    Chain(Box<Expr>, Vec<(char, Expr)>),
    /// `a ^ b ^ c …`, right associative.
    Power(Vec<Expr>),
    /// `F(args)`.
    Call(String, Vec<Expr>),
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    /// How many parentheses and calls enclose the current token.
    depth: usize,
}

fn chain(first: Expr, rest: Vec<(char, Expr)>) -> Expr {
    if rest.is_empty() {
        first
    } else {
        Expr::Chain(Box::new(first), rest)
    }
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn expr(&mut self) -> Result<Expr, String> {
        let first = self.term()?;
        let mut rest = Vec::new();
        while let Some(Token::Op(op @ ('+' | '-'))) = self.peek().cloned() {
            self.at += 1;
            rest.push((op, self.term()?));
        }
        Ok(chain(first, rest))
    }

    fn term(&mut self) -> Result<Expr, String> {
        let first = self.power()?;
        let mut rest = Vec::new();
        while let Some(Token::Op(op @ ('*' | '/'))) = self.peek().cloned() {
            self.at += 1;
            rest.push((op, self.power()?));
        }
        Ok(chain(first, rest))
    }

    fn power(&mut self) -> Result<Expr, String> {
        let mut items = vec![self.unary()?];
        while let Some(Token::Op('^')) = self.peek() {
            self.at += 1;
            items.push(self.unary()?);
        }
        Ok(match <[Expr; 1]>::try_from(items) {
            Ok([only]) => only,
            Err(items) => Expr::Power(items),
        })
    }

    fn unary(&mut self) -> Result<Expr, String> {
        // A loop, not recursion: `- - - x` is x negated (or not) once.
        let mut negated = false;
        while let Some(Token::Op('-')) = self.peek() {
            self.at += 1;
            negated = !negated;
        }
        let operand = self.primary()?;
        Ok(if negated {
            Expr::Negate(Box::new(operand))
        } else {
            operand
        })
    }

    /// Runs `f` one nesting level deeper, refusing past [`MAX_DEPTH`].
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, String>) -> Result<T, String> {
        if self.depth >= MAX_DEPTH {
            return Err(format!(
                "Expression is nested too deeply (more than {MAX_DEPTH} levels)"
            ));
        }
        self.depth += 1;
        let result = f(self);
        self.depth -= 1;
        result
    }

    fn primary(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Token::Number(n)) => Ok(Expr::Number(n)),
            Some(Token::Str(s)) => Ok(Expr::Str(s)),
            Some(Token::Open) => self.nested(|parser| {
                let inner = parser.expr()?;
                match parser.next() {
                    Some(Token::Close) => Ok(inner),
                    _ => Err("Missing closing parenthesis".into()),
                }
            }),
            Some(Token::Ident(name)) => {
                if self.peek() != Some(&Token::Open) {
                    return Ok(Expr::Ident(name));
                }
                self.at += 1;
                let mut args = Vec::new();
                if self.peek() == Some(&Token::Close) {
                    self.at += 1;
                    return Ok(Expr::Call(name, args));
                }
                self.nested(|parser| loop {
                    args.push(parser.expr()?);
                    match parser.next() {
                        Some(Token::Comma) => continue,
                        Some(Token::Close) => break Ok(()),
                        _ => break Err(format!("Missing closing parenthesis for {name}")),
                    }
                })?;
                Ok(Expr::Call(name, args))
            }
            Some(token) => Err(format!("Unexpected token {}", shown(&token))),
            None => Err("Unexpected end of expression".into()),
        }
    }
}

fn shown(token: &Token) -> String {
    match token {
        Token::Number(n) => n.to_string(),
        Token::Ident(s) => s.clone(),
        Token::Str(s) => format!("\"{s}\""),
        Token::Op(c) => c.to_string(),
        Token::Open => "(".into(),
        Token::Close => ")".into(),
        Token::Comma => ",".into(),
    }
}

/// Parses an expression.
pub fn parse(text: &str) -> Result<Expr, String> {
    let mut parser = Parser {
        tokens: tokens(text)?,
        at: 0,
        depth: 0,
    };
    let expr = parser.expr()?;
    match parser.peek() {
        None => Ok(expr),
        Some(token) => Err(format!("Unexpected token {}", shown(token))),
    }
}

/// The query ids an expression names (for ordering and cycle checks).
pub fn references(expr: &Expr, out: &mut Vec<String>) {
    match expr {
        Expr::Ident(id) => out.push(id.clone()),
        Expr::Negate(x) => references(x, out),
        Expr::Chain(first, rest) => {
            references(first, out);
            rest.iter().for_each(|(_, x)| references(x, out));
        }
        Expr::Power(items) => items.iter().for_each(|x| references(x, out)),
        Expr::Call(_, args) => args.iter().for_each(|a| references(a, out)),
        Expr::Number(_) | Expr::Str(_) => {}
    }
}

fn apply(op: char, a: f64, b: f64) -> f64 {
    match op {
        '+' => a + b,
        '-' => a - b,
        '*' => a * b,
        '/' => a / b,
        _ => a.powf(b),
    }
}

fn map_series(series: &Series, f: impl Fn(f64) -> f64) -> Series {
    Series {
        label: series.label.clone(),
        period: series.period,
        points: series.points.iter().map(|(t, v)| (*t, f(*v))).collect(),
    }
}

/// `a op b` at the timestamps both have (both ascending: a merge, no index built).
fn zip(op: char, a: &Series, b: &Series) -> Series {
    let (mut i, mut j) = (0, 0);
    let mut points = Vec::new();
    while let (Some(&(ta, x)), Some(&(tb, y))) = (a.points.get(i), b.points.get(j)) {
        match ta.cmp(&tb) {
            Ordering::Less => i += 1,
            Ordering::Greater => j += 1,
            Ordering::Equal => {
                points.push((ta, apply(op, x, y)));
                i += 1;
                j += 1;
            }
        }
    }
    Series {
        label: a.label.clone(),
        period: a.period.min(b.period),
        points: points.into(),
    }
}

fn binary(op: char, a: Value, b: Value) -> Result<Value, String> {
    use Value::*;
    Ok(match (a, b) {
        (Scalar(x), Scalar(y)) => Scalar(apply(op, x, y)),
        (Series(s), Scalar(y)) => Series(map_series(&s, |x| apply(op, x, y))),
        (Scalar(x), Series(s)) => Series(map_series(&s, |y| apply(op, x, y))),
        (Series(a), Series(b)) => Series(zip(op, &a, &b)),
        (Array(items), Scalar(y)) => Array(
            items
                .iter()
                .map(|s| map_series(s, |x| apply(op, x, y)))
                .collect(),
        ),
        (Scalar(x), Array(items)) => Array(
            items
                .iter()
                .map(|s| map_series(s, |y| apply(op, x, y)))
                .collect(),
        ),
        (Array(items), Series(b)) => Array(items.iter().map(|a| zip(op, a, &b)).collect()),
        (Series(a), Array(items)) => Array(items.iter().map(|b| zip(op, &a, b)).collect()),
        (Array(_), Array(_)) => {
            return Err("Arithmetic between two arrays of time series is not supported".into())
        }
    })
}

/// A running sum, count, minimum and maximum: what `SUM`, `AVG`, `MIN` and `MAX` need.
#[derive(Clone, Copy)]
struct Totals {
    sum: f64,
    count: f64,
    min: f64,
    max: f64,
}

impl Totals {
    const EMPTY: Totals = Totals {
        sum: 0.0,
        count: 0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
    };

    fn add(mut self, v: f64) -> Self {
        self.sum += v;
        self.count += 1.0;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self
    }

    fn of(&self, name: &str) -> f64 {
        match name {
            "SUM" => self.sum,
            "AVG" => self.sum / self.count,
            "MIN" => self.min,
            _ => self.max,
        }
    }
}

fn aggregate(name: &str, value: Value) -> Result<Value, String> {
    match value {
        Value::Scalar(x) => Ok(Value::Scalar(x)),
        Value::Series(s) => Ok(Value::Scalar(if s.points.is_empty() {
            f64::NAN
        } else {
            s.points
                .iter()
                .fold(Totals::EMPTY, |t, (_, v)| t.add(*v))
                .of(name)
        })),
        Value::Array(items) => {
            let mut at: BTreeMap<i64, Totals> = BTreeMap::new();
            for s in &items {
                for (t, v) in s.points.iter() {
                    let totals = at.entry(*t).or_insert(Totals::EMPTY);
                    *totals = totals.add(*v);
                }
            }
            Ok(Value::Series(Series {
                label: String::new(),
                period: items.iter().map(|s| s.period).min().unwrap_or(60),
                points: at
                    .into_iter()
                    .map(|(t, totals)| (t, totals.of(name)))
                    .collect(),
            }))
        }
    }
}

/// Applies `f` to a series or to each series of an array.
fn per_series(value: Value, f: &dyn Fn(&Series) -> Series) -> Result<Value, String> {
    match value {
        Value::Series(s) => Ok(Value::Series(f(&s))),
        Value::Array(items) => Ok(Value::Array(items.iter().map(f).collect())),
        Value::Scalar(_) => Err("Expected a time series".into()),
    }
}

/// `series` on every timestamp of `grid`, gaps filled `how` (points ascending: each
/// gap's neighbours are found by binary search, no index built).
fn fill(series: &Series, grid: &[i64], how: &Fill) -> Series {
    let known = &series.points;
    let mut points = Vec::with_capacity(grid.len());
    for &t in grid {
        let after = known.partition_point(|(at, _)| *at < t);
        let value = match known.get(after) {
            Some((at, v)) if *at == t => Some(*v),
            next => {
                let before = after.checked_sub(1).and_then(|i| known.get(i));
                match how {
                    Fill::Value(v) => Some(*v),
                    Fill::Repeat => before.map(|(_, v)| *v),
                    Fill::Linear => match (before, next) {
                        (Some((t0, v0)), Some((t1, v1))) => {
                            Some(v0 + (v1 - v0) * (t - t0) as f64 / (t1 - t0) as f64)
                        }
                        _ => None,
                    },
                }
            }
        };
        if let Some(v) = value {
            points.push((t, v));
        }
    }
    Series {
        label: series.label.clone(),
        period: series.period,
        points: points.into(),
    }
}

enum Fill {
    Value(f64),
    Repeat,
    Linear,
}

fn neighbours(series: &Series, f: impl Fn((i64, f64), (i64, f64)) -> f64) -> Series {
    Series {
        label: series.label.clone(),
        period: series.period,
        points: series
            .points
            .windows(2)
            .map(|w| (w[1].0, f(w[0], w[1])))
            .collect(),
    }
}

/// How many datapoints a value holds.
fn size(value: &Value) -> usize {
    match value {
        Value::Scalar(_) => 0,
        Value::Series(s) => s.points.len(),
        Value::Array(items) => items.iter().map(|s| s.points.len()).sum(),
    }
}

/// Charges a value just made. Only for values no larger than inputs already charged, so
/// a request never holds much more than its budget.
fn made(value: Value, context: &mut dyn Context) -> Result<Value, String> {
    context.charge(size(&value))?;
    Ok(value)
}

/// Evaluates `expr`.
pub fn eval(expr: &Expr, context: &mut dyn Context) -> Result<Value, String> {
    match expr {
        Expr::Number(n) => Ok(Value::Scalar(*n)),
        Expr::Str(s) => Err(format!("Unexpected string \"{s}\"")),
        // A query's result is shared, not copied: nothing to charge.
        Expr::Ident(id) => context
            .query(id)?
            .ok_or_else(|| format!("Unrecognized metric or expression id {id}")),
        Expr::Negate(x) => negate(x, context),
        Expr::Chain(first, rest) => chain_of(first, rest, context),
        Expr::Power(items) => power(items, context),
        Expr::Call(name, args) => call(name, args, context),
    }
}

// Each kind of node is its own function: `eval` recurses through them, and small frames
// (unoptimised builds keep every local of a function in its frame) keep the deepest
// expression allowed far from the stack's end.

fn negate(x: &Expr, context: &mut dyn Context) -> Result<Value, String> {
    let value = binary('*', Value::Scalar(-1.0), eval(x, context)?)?;
    made(value, context)
}

fn chain_of(
    first: &Expr,
    rest: &[(char, Expr)],
    context: &mut dyn Context,
) -> Result<Value, String> {
    let mut value = eval(first, context)?;
    for (op, x) in rest {
        let right = eval(x, context)?;
        value = made(binary(*op, value, right)?, context)?;
    }
    Ok(value)
}

fn power(items: &[Expr], context: &mut dyn Context) -> Result<Value, String> {
    let mut values = Vec::with_capacity(items.len());
    for x in items {
        values.push(eval(x, context)?);
    }
    // Right associative: fold from the last.
    let mut value = values.pop().ok_or("Unexpected end of expression")?;
    while let Some(base) = values.pop() {
        value = made(binary('^', base, value)?, context)?;
    }
    Ok(value)
}

fn one_arg<'a>(name: &str, args: &'a [Expr]) -> Result<&'a Expr, String> {
    match args {
        [one] => Ok(one),
        _ => Err(format!("{name} takes exactly one argument")),
    }
}

fn call(name: &str, args: &[Expr], context: &mut dyn Context) -> Result<Value, String> {
    match name {
        "METRICS" => metrics_call(args, context),
        "SUM" | "AVG" | "MIN" | "MAX" => aggregate_call(name, args, context),
        "ABS" | "RATE" | "DIFF" | "PERIOD" => series_call(name, one_arg(name, args)?, context),
        "FILL" => fill_call(args, context),
        other => Err(format!("Unknown function {other}")),
    }
}

/// `METRICS()`, `METRICS("filter")`: shared query results, nothing new to charge.
fn metrics_call(args: &[Expr], context: &mut dyn Context) -> Result<Value, String> {
    let filter = match args {
        [] => "",
        [Expr::Str(s)] => s.as_str(),
        _ => return Err("METRICS takes an optional string argument".into()),
    };
    Ok(Value::Array(context.metrics(filter)?))
}

fn aggregate_call(name: &str, args: &[Expr], context: &mut dyn Context) -> Result<Value, String> {
    // `SUM(a, b)` is `SUM([a, b])`.
    let value = match args {
        [one] => eval(one, context)?,
        [] => return Err(format!("{name} takes at least one argument")),
        many => {
            let mut items = Vec::new();
            for arg in many {
                match eval(arg, context)? {
                    Value::Series(s) => items.push(s),
                    Value::Array(more) => items.extend(more),
                    Value::Scalar(_) => return Err(format!("{name} of scalars is not supported")),
                }
            }
            Value::Array(items)
        }
    };
    made(aggregate(name, value)?, context)
}

/// `ABS`, `RATE`, `DIFF`, `PERIOD`: a series (or each of an array) point by point.
fn series_call(name: &str, arg: &Expr, context: &mut dyn Context) -> Result<Value, String> {
    let value = eval(arg, context)?;
    let value = match (name, value) {
        ("ABS", Value::Scalar(x)) => return Ok(Value::Scalar(x.abs())),
        ("ABS", other) => per_series(other, &|s| map_series(s, f64::abs))?,
        ("RATE", other) => per_series(other, &|s| {
            neighbours(s, |(t0, v0), (t1, v1)| (v1 - v0) / (t1 - t0) as f64)
        })?,
        ("DIFF", other) => per_series(other, &|s| neighbours(s, |(_, v0), (_, v1)| v1 - v0))?,
        (_, other) => per_series(other, &|s| {
            let period = s.period as f64;
            map_series(s, |_| period)
        })?,
    };
    made(value, context)
}

fn fill_call(args: &[Expr], context: &mut dyn Context) -> Result<Value, String> {
    let [target, how] = args else {
        return Err("FILL takes two arguments".into());
    };
    let how = match how {
        Expr::Ident(k) if k == "REPEAT" => Fill::Repeat,
        Expr::Ident(k) if k == "LINEAR" => Fill::Linear,
        other => match eval(other, context)? {
            Value::Scalar(v) => Fill::Value(v),
            _ => return Err("FILL's second argument must be a number, REPEAT or LINEAR".into()),
        },
    };
    // FILL is what makes points from nothing: each series' grid is charged before the
    // series is filled. One grid per period (they are few).
    let mut grids: Vec<(i64, Vec<i64>)> = Vec::new();
    let mut fill_one = |s: &Series, context: &mut dyn Context| {
        let index = match grids.iter().position(|(p, _)| *p == s.period) {
            Some(index) => index,
            None => {
                let grid = context.grid(s.period);
                context.charge(grid.len())?;
                grids.push((s.period, grid));
                grids.len() - 1
            }
        };
        let grid = grids
            .get(index)
            .map(|(_, g)| g.as_slice())
            .unwrap_or_default();
        context.charge(grid.len())?;
        Ok::<_, String>(fill(s, grid, &how))
    };
    match eval(target, context)? {
        Value::Series(s) => Ok(Value::Series(fill_one(&s, context)?)),
        Value::Array(items) => Ok(Value::Array(
            items
                .iter()
                .map(|s| fill_one(s, context))
                .collect::<Result<_, _>>()?,
        )),
        Value::Scalar(_) => Err("FILL's first argument must be a time series".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Named series, and the datapoints charged so far against a budget.
    struct Fixed(Vec<(String, Series)>, usize, usize);

    impl Context for Fixed {
        fn query(&mut self, id: &str) -> Result<Option<Value>, String> {
            Ok(self
                .0
                .iter()
                .find(|(i, _)| i == id)
                .map(|(_, s)| Value::Series(s.clone())))
        }
        fn metrics(&mut self, filter: &str) -> Result<Vec<Series>, String> {
            Ok(self
                .0
                .iter()
                .filter(|(i, _)| i.contains(filter))
                .map(|(_, s)| s.clone())
                .collect())
        }
        fn grid(&self, period: i64) -> Vec<i64> {
            (0..5).map(|i| i * period).collect()
        }
        fn charge(&mut self, points: usize) -> Result<(), String> {
            self.1 += points;
            if self.1 > self.2 {
                return Err("Too many datapoints".into());
            }
            Ok(())
        }
    }

    fn series(points: &[(i64, f64)]) -> Series {
        Series {
            label: "x".into(),
            period: 60,
            points: points.into(),
        }
    }

    fn context() -> Fixed {
        Fixed(
            vec![
                ("m1".into(), series(&[(0, 1.0), (60, 2.0), (120, 3.0)])),
                ("m2".into(), series(&[(60, 10.0), (120, 20.0), (180, 30.0)])),
                ("other".into(), series(&[(0, 100.0)])),
            ],
            0,
            usize::MAX,
        )
    }

    fn run(text: &str) -> Result<Value, String> {
        eval(&parse(text)?, &mut context())
    }

    fn points(value: Value) -> Vec<(i64, f64)> {
        match value {
            Value::Series(s) => s.points.to_vec(),
            other => panic!("not a series: {other:?}"),
        }
    }

    #[test]
    fn arithmetic_with_precedence_and_alignment() {
        assert_eq!(run("1 + 2 * 3 ^ 2").unwrap(), Value::Scalar(19.0));
        assert_eq!(run("-(2 - 5)").unwrap(), Value::Scalar(3.0));
        assert_eq!(run("2 ^ 3 ^ 2").unwrap(), Value::Scalar(512.0));
        // Two series: only the timestamps both have.
        assert_eq!(
            points(run("m1 + m2").unwrap()),
            vec![(60, 12.0), (120, 23.0)]
        );
        assert_eq!(
            points(run("m1 * 100 / 2").unwrap()),
            vec![(0, 50.0), (60, 100.0), (120, 150.0)]
        );
    }

    #[test]
    fn sum_of_metrics_sums_across_series_per_timestamp() {
        assert_eq!(
            points(run("SUM(METRICS())").unwrap()),
            vec![(0, 101.0), (60, 12.0), (120, 23.0), (180, 30.0)]
        );
        assert_eq!(
            points(run("SUM(METRICS(\"m\"))").unwrap()),
            vec![(0, 1.0), (60, 12.0), (120, 23.0), (180, 30.0)]
        );
        assert_eq!(
            points(run("MAX(METRICS(\"m\"))").unwrap()),
            vec![(0, 1.0), (60, 10.0), (120, 20.0), (180, 30.0)]
        );
        // Of one series: a scalar.
        assert_eq!(run("AVG(m1)").unwrap(), Value::Scalar(2.0));
        assert_eq!(
            points(run("m1 - AVG(m1)").unwrap()),
            vec![(0, -1.0), (60, 0.0), (120, 1.0)]
        );
        match run("METRICS(\"m\") * 2").unwrap() {
            Value::Array(items) => assert_eq!(items.len(), 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn functions() {
        assert_eq!(
            points(run("FILL(m1, 0)").unwrap()),
            vec![(0, 1.0), (60, 2.0), (120, 3.0), (180, 0.0), (240, 0.0)]
        );
        assert_eq!(
            points(run("FILL(m2, REPEAT)").unwrap()),
            vec![(60, 10.0), (120, 20.0), (180, 30.0), (240, 30.0)]
        );
        assert_eq!(
            points(run("DIFF(m2)").unwrap()),
            vec![(120, 10.0), (180, 10.0)]
        );
        assert_eq!(
            points(run("RATE(m2)").unwrap()),
            vec![(120, 10.0 / 60.0), (180, 10.0 / 60.0)]
        );
        assert_eq!(points(run("PERIOD(other)").unwrap()), vec![(0, 60.0)]);
        assert_eq!(points(run("ABS(-m1)").unwrap())[2], (120, 3.0));
    }

    #[test]
    fn errors() {
        assert!(run("m1 +").is_err());
        assert!(run("(m1").is_err());
        assert!(run("nope").unwrap_err().contains("nope"));
        assert!(run("FOO(m1)").unwrap_err().contains("Unknown function FOO"));
        assert!(run("METRICS() + METRICS()").is_err());
        assert!(run("m1 $ 2").is_err());
        let mut refs = Vec::new();
        references(&parse("SUM(m1, m2) / other").unwrap(), &mut refs);
        assert_eq!(refs, vec!["m1", "m2", "other"]);
    }

    /// The deepest a tree of `expr` goes (iteratively, to measure what may be too deep).
    fn depth(expr: &Expr) -> usize {
        let mut deepest = 0;
        let mut stack = vec![(expr, 1)];
        while let Some((expr, d)) = stack.pop() {
            deepest = deepest.max(d);
            match expr {
                Expr::Negate(x) => stack.push((x, d + 1)),
                Expr::Chain(first, rest) => {
                    stack.push((first, d + 1));
                    stack.extend(rest.iter().map(|(_, x)| (x, d + 1)));
                }
                Expr::Power(items) | Expr::Call(_, items) => {
                    stack.extend(items.iter().map(|x| (x, d + 1)))
                }
                Expr::Number(_) | Expr::Str(_) | Expr::Ident(_) => {}
            }
        }
        deepest
    }

    #[test]
    fn nesting_is_bounded_and_chains_are_flat() {
        // What overflowed the stack: refused, with the parser's message.
        let parens = format!("{}1{}", "(".repeat(600), ")".repeat(600));
        let error = parse(&parens).unwrap_err();
        assert!(error.contains("nested too deeply"), "{error}");
        let calls = format!(
            "{}m1{}",
            "ABS(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        assert!(parse(&calls).unwrap_err().contains("nested too deeply"));
        // As deep as allowed: fine.
        let deepest = format!("{}1{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert_eq!(run(&deepest).unwrap(), Value::Scalar(1.0));
        // Unary minus is a loop: any number of them, one node at most.
        let minus = format!("{}1", "-".repeat(2000));
        assert_eq!(run(&minus).unwrap(), Value::Scalar(1.0));
        assert_eq!(
            run(&format!("{}m1", "-".repeat(2001))).unwrap(),
            run("-m1").unwrap()
        );
        assert!(depth(&parse(&minus).unwrap()) <= 2);
        // Long chains of operators are flat, whatever their length (2048 characters).
        for op in ["+", "-", "*", "/", "^"] {
            let text = format!("1{}", format!("{op}1").repeat(1000));
            let parsed = parse(&text).unwrap();
            assert!(depth(&parsed) <= 3, "{op}: {}", depth(&parsed));
            assert!(run(&text).is_ok());
        }
        assert_eq!(
            run(&format!("1{}", "+1".repeat(1000))).unwrap(),
            Value::Scalar(1001.0)
        );
        assert_eq!(run("2 ^ -1").unwrap(), Value::Scalar(0.5));
        assert_eq!(run("-2 ^ 2").unwrap(), Value::Scalar(4.0));
    }

    #[test]
    fn the_deepest_expression_evaluates_and_drops_on_a_small_stack() {
        // Every kind of node at every allowed level: `ABS(-(1 + 2 ^ 1 * ABS(-(…))))`.
        let mut text = "m1".to_owned();
        for _ in 0..MAX_DEPTH / 2 {
            text = format!("ABS(-(1 + 2 ^ 1 * {text}))");
        }
        // A quarter of the 2 MiB of the blocking pool's threads (an unoptimised build
        // needs about 200 KiB).
        let handle = std::thread::Builder::new()
            .stack_size(512 * 1024)
            .spawn(move || {
                let parsed = parse(&text).unwrap();
                assert!(depth(&parsed) > MAX_DEPTH);
                let value = eval(&parsed, &mut context());
                drop(parsed);
                value.map(|v| size(&v))
            })
            .unwrap();
        assert_eq!(handle.join().unwrap(), Ok(3));
    }

    #[test]
    fn made_datapoints_are_charged() {
        let mut budgeted = context();
        budgeted.2 = 20;
        // FILL charges its grid (5) before filling; m1 itself is shared, not charged.
        assert!(eval(&parse("FILL(m1, 0)").unwrap(), &mut budgeted).is_ok());
        assert!(eval(&parse("m1 * 2 + 1").unwrap(), &mut budgeted).is_ok());
        let error = eval(&parse("FILL(METRICS(), 0)").unwrap(), &mut budgeted).unwrap_err();
        assert!(error.contains("Too many"), "{error}");
        let mut counted = context();
        eval(&parse("m1").unwrap(), &mut counted).unwrap();
        assert_eq!(counted.1, 0);
    }
}
