//! Metric math: the expressions of GetMetricData's queries. Arithmetic (`+ - * / ^`, unary
//! minus) over time series, arrays of time series and scalars; the functions `SUM`, `AVG`,
//! `MIN`, `MAX`, `METRICS()`, `METRICS("s")`, `ABS`, `FILL`, `RATE`, `DIFF`, `PERIOD`.
//!
//! Alignment follows CloudWatch: an operation between two time series is computed at the
//! timestamps both have; `SUM(array)` (and `AVG`, `MIN`, `MAX`) combine, at every
//! timestamp any series has, the values present there; the same functions of a single
//! time series are a scalar (of all its values).

use std::collections::BTreeMap;

/// One time series: its label, period and (timestamp in seconds, value) points,
/// ascending.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Its label.
    pub label: String,
    /// Its period, seconds.
    pub period: i64,
    /// Its points.
    pub points: Vec<(i64, f64)>,
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
    /// `a op b`.
    Binary(char, Box<Expr>, Box<Expr>),
    /// `F(args)`.
    Call(String, Vec<Expr>),
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
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
        let mut left = self.term()?;
        while let Some(Token::Op(op @ ('+' | '-'))) = self.peek().cloned() {
            self.at += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.term()?));
        }
        Ok(left)
    }

    fn term(&mut self) -> Result<Expr, String> {
        let mut left = self.power()?;
        while let Some(Token::Op(op @ ('*' | '/'))) = self.peek().cloned() {
            self.at += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.power()?));
        }
        Ok(left)
    }

    fn power(&mut self) -> Result<Expr, String> {
        let base = self.unary()?;
        if let Some(Token::Op('^')) = self.peek() {
            self.at += 1;
            // Right associative.
            return Ok(Expr::Binary('^', Box::new(base), Box::new(self.power()?)));
        }
        Ok(base)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if let Some(Token::Op('-')) = self.peek() {
            self.at += 1;
            return Ok(Expr::Negate(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Token::Number(n)) => Ok(Expr::Number(n)),
            Some(Token::Str(s)) => Ok(Expr::Str(s)),
            Some(Token::Open) => {
                let inner = self.expr()?;
                match self.next() {
                    Some(Token::Close) => Ok(inner),
                    _ => Err("Missing closing parenthesis".into()),
                }
            }
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
                loop {
                    args.push(self.expr()?);
                    match self.next() {
                        Some(Token::Comma) => continue,
                        Some(Token::Close) => break,
                        _ => return Err(format!("Missing closing parenthesis for {name}")),
                    }
                }
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
        Expr::Binary(_, a, b) => {
            references(a, out);
            references(b, out);
        }
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

/// `a op b` at the timestamps both have.
fn zip(op: char, a: &Series, b: &Series) -> Series {
    let theirs: BTreeMap<i64, f64> = b.points.iter().copied().collect();
    Series {
        label: a.label.clone(),
        period: a.period.min(b.period),
        points: a
            .points
            .iter()
            .filter_map(|(t, x)| theirs.get(t).map(|y| (*t, apply(op, *x, *y))))
            .collect(),
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

/// Combines values with `f` (sum, mean, min, max).
fn reduce(values: &[f64], name: &str) -> f64 {
    match name {
        "SUM" => values.iter().sum(),
        "AVG" => values.iter().sum::<f64>() / values.len() as f64,
        "MIN" => values.iter().copied().fold(f64::INFINITY, f64::min),
        _ => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    }
}

fn aggregate(name: &str, value: Value) -> Result<Value, String> {
    match value {
        Value::Scalar(x) => Ok(Value::Scalar(x)),
        Value::Series(s) => {
            let values: Vec<f64> = s.points.iter().map(|(_, v)| *v).collect();
            Ok(Value::Scalar(if values.is_empty() {
                f64::NAN
            } else {
                reduce(&values, name)
            }))
        }
        Value::Array(items) => {
            let mut at: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
            for s in &items {
                for (t, v) in &s.points {
                    at.entry(*t).or_default().push(*v);
                }
            }
            Ok(Value::Series(Series {
                label: String::new(),
                period: items.iter().map(|s| s.period).min().unwrap_or(60),
                points: at
                    .into_iter()
                    .map(|(t, values)| (t, reduce(&values, name)))
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

fn fill(series: &Series, grid: &[i64], how: &Fill) -> Series {
    let known: BTreeMap<i64, f64> = series.points.iter().copied().collect();
    let mut points = Vec::with_capacity(grid.len());
    for &t in grid {
        let value = match known.get(&t) {
            Some(v) => Some(*v),
            None => match how {
                Fill::Value(v) => Some(*v),
                Fill::Repeat => known.range(..t).next_back().map(|(_, v)| *v),
                Fill::Linear => {
                    let before = known.range(..t).next_back();
                    let after = known.range(t + 1..).next();
                    match (before, after) {
                        (Some((t0, v0)), Some((t1, v1))) => {
                            Some(v0 + (v1 - v0) * (t - t0) as f64 / (t1 - t0) as f64)
                        }
                        _ => None,
                    }
                }
            },
        };
        if let Some(v) = value {
            points.push((t, v));
        }
    }
    Series {
        label: series.label.clone(),
        period: series.period,
        points,
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

/// Evaluates `expr`.
pub fn eval(expr: &Expr, context: &mut dyn Context) -> Result<Value, String> {
    match expr {
        Expr::Number(n) => Ok(Value::Scalar(*n)),
        Expr::Str(s) => Err(format!("Unexpected string \"{s}\"")),
        Expr::Ident(id) => context
            .query(id)?
            .ok_or_else(|| format!("Unrecognized metric or expression id {id}")),
        Expr::Negate(x) => binary('*', Value::Scalar(-1.0), eval(x, context)?),
        Expr::Binary(op, a, b) => {
            let a = eval(a, context)?;
            let b = eval(b, context)?;
            binary(*op, a, b)
        }
        Expr::Call(name, args) => call(name, args, context),
    }
}

fn one_arg<'a>(name: &str, args: &'a [Expr]) -> Result<&'a Expr, String> {
    match args {
        [one] => Ok(one),
        _ => Err(format!("{name} takes exactly one argument")),
    }
}

fn call(name: &str, args: &[Expr], context: &mut dyn Context) -> Result<Value, String> {
    match name {
        "METRICS" => {
            let filter = match args {
                [] => String::new(),
                [Expr::Str(s)] => s.clone(),
                _ => return Err("METRICS takes an optional string argument".into()),
            };
            Ok(Value::Array(context.metrics(&filter)?))
        }
        "SUM" | "AVG" | "MIN" | "MAX" => {
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
                            Value::Scalar(_) => {
                                return Err(format!("{name} of scalars is not supported"))
                            }
                        }
                    }
                    Value::Array(items)
                }
            };
            aggregate(name, value)
        }
        "ABS" => match eval(one_arg(name, args)?, context)? {
            Value::Scalar(x) => Ok(Value::Scalar(x.abs())),
            other => per_series(other, &|s| map_series(s, f64::abs)),
        },
        "RATE" => per_series(eval(one_arg(name, args)?, context)?, &|s| {
            neighbours(s, |(t0, v0), (t1, v1)| (v1 - v0) / (t1 - t0) as f64)
        }),
        "DIFF" => per_series(eval(one_arg(name, args)?, context)?, &|s| {
            neighbours(s, |(_, v0), (_, v1)| v1 - v0)
        }),
        "PERIOD" => per_series(eval(one_arg(name, args)?, context)?, &|s| {
            let period = s.period as f64;
            map_series(s, |_| period)
        }),
        "FILL" => {
            let [target, how] = args else {
                return Err("FILL takes two arguments".into());
            };
            let how = match how {
                Expr::Ident(k) if k == "REPEAT" => Fill::Repeat,
                Expr::Ident(k) if k == "LINEAR" => Fill::Linear,
                other => match eval(other, context)? {
                    Value::Scalar(v) => Fill::Value(v),
                    _ => {
                        return Err(
                            "FILL's second argument must be a number, REPEAT or LINEAR".into()
                        )
                    }
                },
            };
            let value = eval(target, context)?;
            let grid = |s: &Series| context.grid(s.period);
            match value {
                Value::Series(s) => Ok(Value::Series(fill(&s, &grid(&s), &how))),
                Value::Array(items) => Ok(Value::Array(
                    items.iter().map(|s| fill(s, &grid(s), &how)).collect(),
                )),
                Value::Scalar(_) => Err("FILL's first argument must be a time series".into()),
            }
        }
        other => Err(format!("Unknown function {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Vec<(String, Series)>);

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
    }

    fn series(points: &[(i64, f64)]) -> Series {
        Series {
            label: "x".into(),
            period: 60,
            points: points.to_vec(),
        }
    }

    fn context() -> Fixed {
        Fixed(vec![
            ("m1".into(), series(&[(0, 1.0), (60, 2.0), (120, 3.0)])),
            ("m2".into(), series(&[(60, 10.0), (120, 20.0), (180, 30.0)])),
            ("other".into(), series(&[(0, 100.0)])),
        ])
    }

    fn run(text: &str) -> Result<Value, String> {
        eval(&parse(text)?, &mut context())
    }

    fn points(value: Value) -> Vec<(i64, f64)> {
        match value {
            Value::Series(s) => s.points,
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
}
