//! Walking an object along its structural schema, as validation and the CEL rules both do:
//! a node's children are the object's fields that the schema specifies (in `properties`, else
//! by `additionalProperties`) and the array's items (by `items`), each with its schema and its
//! field path; at the root, the fields the server owns (`apiVersion`, `kind`, `metadata`) are
//! not walked. Fields the schema does not specify are not walked either (pruning drops them).

use serde_json::Value;

use super::{ROOT_META, additional_schema, index, join, properties};

/// One value of the object with the schema that specifies it.
pub struct Node<'a> {
    pub schema: &'a Value,
    pub value: &'a Value,
    /// `spec.items[0].name`; empty at the root.
    pub path: String,
    /// The object itself, not one of its fields.
    pub root: bool,
}

/// How a child is reached from its parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step<'a> {
    /// A field of an object.
    Key(&'a str),
    /// An item of an array.
    Index(usize),
}

impl<'a> Node<'a> {
    /// The whole object under the schema's root.
    pub fn root(schema: &'a Value, value: &'a Value) -> Self {
        Node { schema, value, path: String::new(), root: true }
    }

    /// The children the schema specifies, in the object's key order or the array's order.
    pub fn children(&self) -> impl Iterator<Item = (Step<'a>, Node<'a>)> + '_ {
        let fields = self.value.as_object().map(|map| {
            let specified = properties(self.schema);
            let additional = additional_schema(self.schema);
            map.iter()
                .filter(|(key, _)| !(self.root && ROOT_META.contains(&key.as_str())))
                .filter_map(move |(key, value)| {
                    let schema =
                        specified.and_then(|properties| properties.get(key)).or(additional)?;
                    let path = join(&self.path, key);
                    Some((Step::Key(key.as_str()), Node { schema, value, path, root: false }))
                })
        });
        let items = self.value.as_array().zip(self.schema.get("items")).map(|(items, schema)| {
            items.iter().enumerate().map(move |(i, value)| {
                let path = index(&self.path, i);
                (Step::Index(i), Node { schema, value, path, root: false })
            })
        });
        fields.into_iter().flatten().chain(items.into_iter().flatten())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Every node below `node`, depth first, as (path, value).
    fn walk(node: &Node<'_>, seen: &mut Vec<(String, Value)>) {
        for (_, child) in node.children() {
            seen.push((child.path.clone(), child.value.clone()));
            walk(&child, seen);
        }
    }

    #[test]
    fn the_walk_follows_the_schema_and_skips_what_the_server_owns() {
        let schema = json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {"items": {"type": "array", "items": {
                        "type": "object", "properties": {"name": {"type": "string"}}
                    }}},
                    "additionalProperties": {"type": "integer"},
                },
                "kind": {"type": "string"},
            },
        });
        let object = json!({
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": {"items": [{"name": "a", "extra": 1}], "count": 2},
            "unknown": true,
        });
        let mut seen = Vec::new();
        walk(&Node::root(&schema, &object), &mut seen);
        let mut paths: Vec<&str> = seen.iter().map(|(path, _)| path.as_str()).collect();
        paths.sort_unstable();
        assert_eq!(
            paths,
            ["spec", "spec.count", "spec.items", "spec.items[0]", "spec.items[0].name"]
        );
        let count = seen.iter().find(|(path, _)| path == "spec.count").map(|(_, value)| value);
        assert_eq!(count, Some(&json!(2)), "a field the schema's additionalProperties specifies");
    }

    #[test]
    fn a_child_says_how_it_is_reached() {
        let schema = json!({"type": "array", "items": {"type": "string"}});
        let value = json!(["a", "b"]);
        let node = Node { schema: &schema, value: &value, path: "spec.names".into(), root: false };
        let steps: Vec<(Step<'_>, String)> =
            node.children().map(|(step, child)| (step, child.path)).collect();
        assert_eq!(
            steps,
            [
                (Step::Index(0), "spec.names[0]".to_owned()),
                (Step::Index(1), "spec.names[1]".to_owned())
            ]
        );
    }
}
