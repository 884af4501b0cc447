//! Line and column of a path in a YAML (or JSON) document, for problem messages.
//!
//! The document is walked once with the YAML parser serde-saphyr uses (granit-parser), and
//! each node's path (`tests[0].steps[1].load.rate`) is mapped to where it starts — for a
//! mapping value, where its key starts. A path with no node (a missing field) takes the
//! place of its nearest parent.

use std::collections::HashMap;

use serde_saphyr::granit_parser::{Event, Parser};

use super::Problem;

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, index: usize },
}

/// Every node's path and its 1-based line and column.
fn positions(text: &str) -> HashMap<String, (usize, usize)> {
    let mut positions = HashMap::new();
    let mut stack: Vec<Frame> = Vec::new();
    for item in Parser::new_from_str(text) {
        let Ok((event, span)) = item else { break };
        let here = (span.start.line(), span.start.col() + 1);
        let is_node = matches!(
            event,
            Event::Scalar(..)
                | Event::SequenceStart(..)
                | Event::MappingStart(..)
                | Event::Alias(..)
        );
        if is_node {
            // A mapping key: remember it and where it is.
            if let Some(Frame::Map { path, key }) = stack.last_mut()
                && key.is_none()
            {
                let name = match &event {
                    Event::Scalar(value, ..) => value.to_string(),
                    _ => String::from("?"),
                };
                let child = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                positions.insert(child, here);
                *key = Some(name);
                if let Event::SequenceStart(..) | Event::MappingStart(..) = event {
                    // A complex key: walk it under a throwaway path.
                    stack.push(Frame::Seq {
                        path: String::from("\u{0}"),
                        index: 0,
                    });
                }
                continue;
            }
            let path = match stack.last_mut() {
                None => String::new(),
                Some(Frame::Map { path, key }) => {
                    let name = key.take().unwrap_or_default();
                    if path.is_empty() {
                        name
                    } else {
                        format!("{path}.{name}")
                    }
                }
                Some(Frame::Seq { path, index }) => {
                    let child = format!("{path}[{index}]");
                    *index += 1;
                    positions.entry(child.clone()).or_insert(here);
                    child
                }
            };
            match event {
                Event::SequenceStart(..) => stack.push(Frame::Seq { path, index: 0 }),
                Event::MappingStart(..) => stack.push(Frame::Map { path, key: None }),
                _ => {}
            }
        } else if let Event::SequenceEnd | Event::MappingEnd = event {
            stack.pop();
        }
    }
    positions
}

/// The nearest known position of `path` or of one of its parents.
fn find(positions: &HashMap<String, (usize, usize)>, path: &str) -> Option<(usize, usize)> {
    let mut path = path;
    loop {
        if let Some(at) = positions.get(path) {
            return Some(*at);
        }
        let cut = path.rfind(['.', '['])?;
        path = &path[..cut];
    }
}

/// `path: message (line L, column C)` for every problem.
pub(crate) fn describe(text: &str, problems: &[Problem]) -> Vec<String> {
    let positions = positions(text);
    problems
        .iter()
        .map(|p| match find(&positions, &p.path) {
            Some((line, column)) if !p.path.is_empty() => {
                format!("{}: {} (line {line}, column {column})", p.path, p.message)
            }
            _ if p.path.is_empty() => p.message.clone(),
            _ => format!("{}: {}", p.path, p.message),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_of_block_and_flow_nodes() {
        let text = "name: j\ntests:\n  - name: t\n    steps:\n      - name: s\n        load: { url: 'http://x/', rate: 0 }\n";
        let at = positions(text);
        assert_eq!(at["name"], (1, 1));
        assert_eq!(at["tests"], (2, 1));
        assert_eq!(at["tests[0]"], (3, 5));
        assert_eq!(at["tests[0].steps[0].name"], (5, 9));
        assert_eq!(at["tests[0].steps[0].load.rate"], (6, 35));
        assert_eq!(find(&at, "tests[0].steps[0].load.duration"), Some((6, 9)));
    }

    #[test]
    fn json_documents_have_positions_too() {
        let text = "{\n  \"name\": \"j\",\n  \"tests\": [\n    {\"name\": \"t\"}\n  ]\n}\n";
        let at = positions(text);
        assert_eq!(at["tests[0].name"], (4, 6));
    }
}
