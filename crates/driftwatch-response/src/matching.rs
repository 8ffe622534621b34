//! Which playbooks an alert triggers: the alert's fields as a playbook sees them
//! ([`AlertFacts`]) and the selectors over them.

use driftwatch_model::{Alert, Priority};

use crate::playbook::{Pattern, Selector};

/// What playbooks match on and actions need, read from an alert's `output_fields`. Falco's
/// `<NA>` (and a missing field) read as empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlertFacts {
    pub rule: String,
    pub priority: Option<Priority>,
    pub time: String,
    pub tags: Vec<String>,
    /// `container.id`: the 12-character short id.
    pub container_id: String,
    pub container_name: String,
    /// `container.image.repository`.
    pub image_repository: String,
    pub image_tag: String,
    pub k8s_namespace: String,
    pub k8s_pod: String,
    /// `k8s.pod.uid`: the precondition of a pod delete or eviction.
    pub k8s_pod_uid: String,
    /// `proc.pid`, in the host's pid namespace.
    pub pid: Option<u32>,
    pub exepath: String,
}

fn text(alert: &Alert, field: &str) -> String {
    match alert.output_fields.get(field) {
        Some(serde_json::Value::String(s)) if s != "<NA>" => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

impl AlertFacts {
    pub fn of(alert: &Alert) -> AlertFacts {
        AlertFacts {
            rule: alert.rule.clone(),
            priority: Some(alert.priority),
            time: alert.time.clone(),
            tags: alert.tags.clone(),
            container_id: text(alert, "container.id"),
            container_name: text(alert, "container.name"),
            image_repository: text(alert, "container.image.repository"),
            image_tag: text(alert, "container.image.tag"),
            k8s_namespace: text(alert, "k8s.ns.name"),
            k8s_pod: text(alert, "k8s.pod.name"),
            k8s_pod_uid: text(alert, "k8s.pod.uid"),
            pid: alert
                .output_fields
                .get("proc.pid")
                .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
                .and_then(|p| u32::try_from(p).ok())
                .filter(|p| *p > 0),
            exepath: text(alert, "proc.exepath"),
        }
    }

    /// `repository:tag`, or the repository alone.
    pub fn image(&self) -> String {
        if self.image_tag.is_empty() {
            self.image_repository.clone()
        } else {
            format!("{}:{}", self.image_repository, self.image_tag)
        }
    }

    /// The alert is about a Kubernetes pod.
    pub fn is_pod(&self) -> bool {
        !self.k8s_namespace.is_empty() && !self.k8s_pod.is_empty()
    }

    /// `name (short id)` or the short id.
    pub fn container_label(&self) -> String {
        if self.container_name.is_empty() {
            self.container_id.clone()
        } else {
            format!("{} ({})", self.container_name, self.container_id)
        }
    }
}

fn any(patterns: &[Pattern], values: &[&str]) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| values.iter().any(|v| p.matches(v)))
}

impl Selector {
    /// Every key given matches (within a list, any item).
    pub fn matches(&self, a: &AlertFacts) -> bool {
        let priority_ok = match (self.priority, a.priority) {
            (None, _) => true,
            // Lower is more severe: Critical < Warning.
            (Some(min), Some(p)) => p <= min,
            (Some(_), None) => false,
        };
        let image = a.image();
        priority_ok
            && any(&self.rules, &[&a.rule])
            && (self.tags.is_empty() || self.tags.iter().any(|t| a.tags.contains(t)))
            && (self.containers.is_empty()
                || (!a.container_id.is_empty()
                    && any(&self.containers, &[&a.container_name, &a.container_id])))
            && any(&self.images, &[&image, &a.image_repository])
            && any(&self.namespaces, &[&a.k8s_namespace])
            && any(&self.exepaths, &[&a.exepath])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::PlaybookSet;

    pub(crate) fn alert(
        rule: &str,
        priority: Priority,
        tags: &[&str],
        fields: &[(&str, serde_json::Value)],
    ) -> Alert {
        Alert {
            time: Alert::format_time(1_795_852_800_000_000_000),
            rule: rule.into(),
            priority,
            source: "syscall".into(),
            hostname: "h".into(),
            output: "o".into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            output_fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    fn selector(yaml: &str) -> Selector {
        let text = format!("playbooks:\n  - name: p\n    match: {yaml}\n    actions: [kill]\n");
        let set = PlaybookSet::parse("t.yaml", &text).unwrap_or_else(|e| panic!("{e:?}"));
        set.playbooks[0].selector.clone()
    }

    fn web() -> AlertFacts {
        AlertFacts::of(&alert(
            "Drop and execute new binary in container",
            Priority::Critical,
            &["container", "drift", "binary_drift"],
            &[
                ("container.id", "0123456789ab".into()),
                ("container.name", "web-1".into()),
                (
                    "container.image.repository",
                    "registry.local/shop/web".into(),
                ),
                ("container.image.tag", "1.4".into()),
                ("k8s.ns.name", "<NA>".into()),
                ("proc.pid", 4242.into()),
                ("proc.exepath", "/tmp/x".into()),
            ],
        ))
    }

    #[test]
    fn facts_read_na_as_empty() {
        let f = web();
        assert_eq!(f.k8s_namespace, "");
        assert!(!f.is_pod());
        assert_eq!(f.pid, Some(4242));
        assert_eq!(f.image(), "registry.local/shop/web:1.4");
        assert_eq!(f.container_label(), "web-1 (0123456789ab)");
    }

    #[test]
    fn every_key_must_match_any_item() {
        let f = web();
        assert!(selector("{}").matches(&f));
        assert!(selector("{tags: [shell, binary_drift]}").matches(&f));
        assert!(!selector("{tags: [shell]}").matches(&f));
        assert!(selector("{rules: ['Drop and execute*']}").matches(&f));
        assert!(!selector("{rules: ['Fileless*']}").matches(&f));
        assert!(selector("{containers: ['web-*']}").matches(&f));
        assert!(selector("{containers: ['0123456789ab']}").matches(&f));
        assert!(!selector("{containers: ['db-*']}").matches(&f));
        assert!(selector("{images: ['registry.local/shop/*']}").matches(&f));
        assert!(selector("{images: ['*/web:1.4']}").matches(&f));
        assert!(!selector("{images: ['*:2.0']}").matches(&f));
        assert!(selector("{exepaths: ['/tmp/*']}").matches(&f));
        // Both keys must hold.
        assert!(!selector("{tags: [binary_drift], images: ['nginx*']}").matches(&f));
    }

    #[test]
    fn priority_is_a_minimum() {
        let f = web();
        assert!(selector("{priority: Critical}").matches(&f));
        assert!(selector("{priority: warning}").matches(&f));
        assert!(!selector("{priority: Emergency}").matches(&f));
    }

    #[test]
    fn namespaces_only_star_matches_outside_kubernetes() {
        let mut f = web();
        assert!(selector("{namespaces: ['*']}").matches(&f));
        assert!(!selector("{namespaces: ['prod']}").matches(&f));
        f.k8s_namespace = "prod".into();
        f.k8s_pod = "web-0".into();
        assert!(f.is_pod());
        assert!(selector("{namespaces: ['prod', 'staging']}").matches(&f));
        assert!(!selector("{namespaces: ['kube-*']}").matches(&f));
    }
}
