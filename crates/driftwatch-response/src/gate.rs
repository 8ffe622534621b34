//! Validation before acting (the playbook's step 2): exceptions first, then duplicates within
//! the playbook's window are collapsed, then the container's own budget of playbook runs,
//! then each action's rate / blast-radius limit. Pure: time is handed in, so every rule here
//! tests without sleeping.
//!
//! `kill` is never collapsed: a duplicate or an over-budget run still runs its `kill` steps
//! (a payload killed once and run again is killed again); only the other actions (capture,
//! isolate, evict, notify, ...) wait for the window or the budget.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::matching::AlertFacts;
use crate::playbook::{ActionLimit, Playbook, PlaybookScope, PlaybookSet};

/// Keys remembered at most; beyond it, expired ones are dropped first, then the oldest.
const MAX_KEYS: usize = 65_536;

/// Playbook runs one container may start per [`CONTAINER_WINDOW`] before only its `kill`
/// steps run: a container that varies its executable (every path a new dedupe key) cannot
/// make the agent capture, isolate or notify without end, nor keep the responder's thread
/// from its neighbours' alerts.
pub const CONTAINER_RUNS: usize = 20;
/// The window of [`CONTAINER_RUNS`].
pub const CONTAINER_WINDOW: Duration = Duration::from_secs(60);

/// Why a playbook does not run for an alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GateDecision {
    /// Run its actions.
    Run,
    /// An exception (file-wide or the playbook's own) matched.
    Excepted { by: String },
    /// The same rule, container and executable triggered it `ago` ago, within its window:
    /// only its `kill` steps run.
    Duplicate { ago: Duration },
    /// The container used up its budget of playbook runs ([`CONTAINER_RUNS`] per
    /// [`CONTAINER_WINDOW`]): only `kill` steps run.
    OverBudget { runs: usize },
}

impl GateDecision {
    /// Whether only the playbook's `kill` steps run.
    pub fn kill_only(&self) -> bool {
        matches!(
            self,
            GateDecision::Duplicate { .. } | GateDecision::OverBudget { .. }
        )
    }
}

#[derive(Default)]
pub struct Gate {
    /// (playbook, rule, container, exepath) → when it last ran.
    last_run: HashMap<(String, String, String, String), Instant>,
    /// (playbook, step, scope value) → when the step ran, oldest first.
    used: HashMap<(String, usize, String), VecDeque<Instant>>,
    /// container → when its full playbook runs started, oldest first.
    runs: HashMap<String, VecDeque<Instant>>,
}

impl Gate {
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Whether `playbook` (of `set`) runs for this alert now. A `Run` answer starts its
    /// dedupe window.
    pub fn admit(
        &mut self,
        set: &PlaybookSet,
        playbook: &Playbook,
        facts: &AlertFacts,
        now: Instant,
    ) -> GateDecision {
        if let Some(i) = set.exceptions.iter().position(|s| s.matches(facts)) {
            return GateDecision::Excepted {
                by: format!("exception #{} of {}", i + 1, set.file),
            };
        }
        if let Some(i) = playbook.except.iter().position(|s| s.matches(facts)) {
            return GateDecision::Excepted {
                by: format!("`except` #{} of playbook {}", i + 1, playbook.name),
            };
        }
        let key = (
            playbook.name.clone(),
            facts.rule.clone(),
            facts.container_id.clone(),
            facts.exepath.clone(),
        );
        if let Some(&at) = self.last_run.get(&key) {
            let ago = now.saturating_duration_since(at);
            if ago < playbook.dedupe_window {
                return GateDecision::Duplicate { ago };
            }
        }
        if self.runs.len() >= MAX_KEYS {
            self.runs.retain(|_, q| {
                q.back()
                    .is_some_and(|t| now.saturating_duration_since(*t) < CONTAINER_WINDOW)
            });
        }
        let runs = self.runs.entry(facts.container_id.clone()).or_default();
        while runs
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= CONTAINER_WINDOW)
        {
            runs.pop_front();
        }
        if runs.len() >= CONTAINER_RUNS {
            return GateDecision::OverBudget { runs: runs.len() };
        }
        runs.push_back(now);
        if self.last_run.len() >= MAX_KEYS {
            let window = playbook.dedupe_window;
            self.last_run
                .retain(|_, at| now.saturating_duration_since(*at) < window);
            if self.last_run.len() >= MAX_KEYS
                && let Some(oldest) = self
                    .last_run
                    .iter()
                    .min_by_key(|(_, at)| **at)
                    .map(|(k, _)| k.clone())
            {
                self.last_run.remove(&oldest);
            }
        }
        self.last_run.insert(key, now);
        GateDecision::Run
    }

    /// Takes one use of step `step`'s limit for this alert's scope, or says why not. A step
    /// without a limit always may run.
    pub fn take(
        &mut self,
        playbook: &str,
        step: usize,
        limit: Option<&ActionLimit>,
        facts: &AlertFacts,
        now: Instant,
    ) -> Result<(), String> {
        let Some(limit) = limit else {
            return Ok(());
        };
        let scope_value = match limit.per {
            PlaybookScope::Namespace => facts.k8s_namespace.clone(),
            PlaybookScope::Container => facts.container_id.clone(),
            PlaybookScope::Image => facts.image(),
            PlaybookScope::Host => String::new(),
        };
        if self.used.len() >= MAX_KEYS {
            self.used.retain(|_, q| {
                q.back().is_some_and(|t| {
                    now.saturating_duration_since(*t) < Duration::from_secs(86_400)
                })
            });
        }
        let q = self
            .used
            .entry((playbook.to_string(), step, scope_value.clone()))
            .or_default();
        while q
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= limit.window)
        {
            q.pop_front();
        }
        if q.len() >= limit.max as usize {
            let what = match (limit.per, scope_value.as_str()) {
                (PlaybookScope::Host, _) => "on this host".to_string(),
                (PlaybookScope::Namespace, "") => "for containers outside Kubernetes".to_string(),
                (per, v) => format!("for {} {v}", per.as_str()),
            };
            return Err(format!(
                "limit reached: already {} in the last {} {what} (limits: max {})",
                q.len(),
                driftwatch_config::format_duration(limit.window),
                limit.max
            ));
        }
        q.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftwatch_model::Priority;

    const FILE: &str = "\
exceptions:
  - {images: ['debug/*']}
playbooks:
  - name: contain
    match: {tags: [binary_drift]}
    except:
      - {exepaths: ['/usr/local/bin/reload']}
    dedupe_window: 5m
    actions:
      - {action: evict, limits: {max: 3, per: namespace, window: 1h}}
";

    fn facts(container: &str, ns: &str, exe: &str, image: &str) -> AlertFacts {
        AlertFacts {
            rule: "Drop and execute new binary in container".into(),
            priority: Some(Priority::Critical),
            tags: vec!["binary_drift".into()],
            container_id: container.into(),
            k8s_namespace: ns.into(),
            k8s_pod: if ns.is_empty() {
                String::new()
            } else {
                format!("{container}-pod")
            },
            exepath: exe.into(),
            image_repository: image.into(),
            ..AlertFacts::default()
        }
    }

    #[test]
    fn exceptions_apply_before_anything_else() {
        let set = PlaybookSet::parse("p.yaml", FILE).unwrap();
        let pb = &set.playbooks[0];
        let mut g = Gate::new();
        let t = Instant::now();
        let v = g.admit(&set, pb, &facts("aaa", "", "/tmp/x", "debug/tools"), t);
        assert_eq!(
            v,
            GateDecision::Excepted {
                by: "exception #1 of p.yaml".into()
            }
        );
        let v = g.admit(
            &set,
            pb,
            &facts("aaa", "", "/usr/local/bin/reload", "app"),
            t,
        );
        assert!(matches!(v, GateDecision::Excepted { by } if by.contains("playbook contain")));
        // Excepted alerts did not start a dedupe window.
        assert_eq!(
            g.admit(&set, pb, &facts("aaa", "", "/tmp/x", "app"), t),
            GateDecision::Run
        );
    }

    #[test]
    fn duplicates_collapse_within_the_window_only() {
        let set = PlaybookSet::parse("p.yaml", FILE).unwrap();
        let pb = &set.playbooks[0];
        let mut g = Gate::new();
        let t = Instant::now();
        assert_eq!(
            g.admit(&set, pb, &facts("aaa", "", "/tmp/x", "app"), t),
            GateDecision::Run
        );
        let later = t + Duration::from_secs(60);
        assert_eq!(
            g.admit(&set, pb, &facts("aaa", "", "/tmp/x", "app"), later),
            GateDecision::Duplicate {
                ago: Duration::from_secs(60)
            }
        );
        // Another executable, another container: not duplicates.
        assert_eq!(
            g.admit(&set, pb, &facts("aaa", "", "/tmp/y", "app"), later),
            GateDecision::Run
        );
        assert_eq!(
            g.admit(&set, pb, &facts("bbb", "", "/tmp/x", "app"), later),
            GateDecision::Run
        );
        // After the window, it runs again.
        let after = t + Duration::from_secs(301);
        assert_eq!(
            g.admit(&set, pb, &facts("aaa", "", "/tmp/x", "app"), after),
            GateDecision::Run
        );
    }

    #[test]
    fn duplicates_and_over_budget_runs_still_kill() {
        assert!(
            GateDecision::Duplicate {
                ago: Duration::ZERO
            }
            .kill_only()
        );
        assert!(GateDecision::OverBudget { runs: 1 }.kill_only());
        assert!(!GateDecision::Run.kill_only());
        assert!(!GateDecision::Excepted { by: String::new() }.kill_only());
    }

    #[test]
    fn a_container_varying_its_executable_runs_out_of_budget_alone() {
        let set = PlaybookSet::parse("p.yaml", FILE).unwrap();
        let pb = &set.playbooks[0];
        let mut g = Gate::new();
        let t = Instant::now();
        for i in 0..CONTAINER_RUNS {
            let v = g.admit(
                &set,
                pb,
                &facts("noisy", "", &format!("/tmp/x{i}"), "app"),
                t,
            );
            assert_eq!(v, GateDecision::Run, "run {i}");
        }
        assert_eq!(
            g.admit(&set, pb, &facts("noisy", "", "/tmp/another", "app"), t),
            GateDecision::OverBudget {
                runs: CONTAINER_RUNS
            }
        );
        // The neighbour's budget is its own.
        assert_eq!(
            g.admit(&set, pb, &facts("quiet", "", "/tmp/x0", "app"), t),
            GateDecision::Run
        );
        // After the window, the noisy container runs again.
        assert_eq!(
            g.admit(
                &set,
                pb,
                &facts("noisy", "", "/tmp/later", "app"),
                t + CONTAINER_WINDOW
            ),
            GateDecision::Run
        );
    }

    #[test]
    fn limit_stops_the_fourth_per_namespace_and_frees_up_after_the_window() {
        let set = PlaybookSet::parse("p.yaml", FILE).unwrap();
        let limit = set.playbooks[0].actions[0].limit;
        let mut g = Gate::new();
        let t = Instant::now();
        for (i, c) in ["a", "b", "c"].iter().enumerate() {
            let at = t + Duration::from_secs(i as u64 * 60);
            g.take(
                "contain",
                0,
                limit.as_ref(),
                &facts(c, "prod", "/x", "app"),
                at,
            )
            .unwrap();
        }
        let e = g
            .take(
                "contain",
                0,
                limit.as_ref(),
                &facts("d", "prod", "/x", "app"),
                t + Duration::from_secs(600),
            )
            .unwrap_err();
        assert_eq!(
            e,
            "limit reached: already 3 in the last 1h for namespace prod (limits: max 3)"
        );
        // Another namespace has its own budget.
        g.take(
            "contain",
            0,
            limit.as_ref(),
            &facts("e", "staging", "/x", "app"),
            t,
        )
        .unwrap();
        // An hour after the first, one use is free again.
        g.take(
            "contain",
            0,
            limit.as_ref(),
            &facts("d", "prod", "/x", "app"),
            t + Duration::from_secs(3600),
        )
        .unwrap();
        assert!(
            g.take(
                "contain",
                0,
                limit.as_ref(),
                &facts("f", "prod", "/x", "app"),
                t + Duration::from_secs(3601)
            )
            .is_err()
        );
        // No limit: always.
        for _ in 0..100 {
            g.take("contain", 1, None, &facts("d", "prod", "/x", "app"), t)
                .unwrap();
        }
    }
}
