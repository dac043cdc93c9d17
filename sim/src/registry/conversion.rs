//! Version conversion: how an object moves between the form a resource
//! version serves and the form the store keeps. Only `events.k8s.io/v1`
//! Events differ in shape: the real server stores them as core/v1 Events
//! (renaming fields both ways), so both APIs see the same objects. Every
//! other resource is stored as served, with its apiVersion and kind set.

use serde_json::Value;

use super::ResourceDef;
use crate::error::GroupResource;
use crate::util::set_type_meta;

/// `events.k8s.io/v1` field names and their core/v1 counterparts.
const EVENT_RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedCount", "count"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
];

impl ResourceDef {
    /// Whether served objects differ from stored ones beyond apiVersion and
    /// kind (so lists must convert each item).
    pub fn converts_objects(&self) -> bool {
        self.is("events.k8s.io", "events")
    }

    /// The resource the objects are stored under.
    pub fn storage_gr(&self) -> GroupResource {
        if self.converts_objects() { GroupResource::new("", "events") } else { self.gr() }
    }

    /// The apiVersion objects of this resource are stored with.
    pub fn storage_api_version(&self) -> String {
        if self.converts_objects() { "v1".to_string() } else { self.api_version() }
    }

    /// A request object in its storage form.
    pub fn to_storage(&self, object: Value) -> Value {
        if !self.converts_objects() {
            return object;
        }
        let mut object = rename_event_fields(object, Direction::ToCore);
        set_type_meta(&mut object, "v1", "Event");
        object
    }

    /// A stored object as this resource version serves it.
    pub fn to_served(&self, stored: &Value) -> Value {
        let mut object = stored.clone();
        if self.converts_objects() {
            object = rename_event_fields(object, Direction::FromCore);
        }
        set_type_meta(&mut object, &self.api_version(), &self.kind);
        object
    }

    /// A `fieldSelector` path of this version in storage form.
    pub fn field_path_to_storage(&self, path: &str) -> String {
        if !self.converts_objects() {
            return path.to_string();
        }
        for (served_name, core_name) in EVENT_RENAMES {
            if path == *served_name {
                return (*core_name).to_string();
            }
            if let Some(rest) = path.strip_prefix(&format!("{served_name}.")) {
                return format!("{core_name}.{rest}");
            }
        }
        path.to_string()
    }
}

enum Direction {
    ToCore,
    FromCore,
}

fn rename_event_fields(mut object: Value, direction: Direction) -> Value {
    let Some(fields) = object.as_object_mut() else {
        return object;
    };
    for (served_name, core_name) in EVENT_RENAMES {
        let (from, to) = match direction {
            Direction::ToCore => (served_name, core_name),
            Direction::FromCore => (core_name, served_name),
        };
        if let Some(value) = fields.remove(*from) {
            fields.insert((*to).to_string(), value);
        }
    }
    object
}
