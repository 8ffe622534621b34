//! The Kubernetes seam: what the pod actions ask of the API server. `driftwatch-kube`'s
//! `KubeClient` implements it; the executor only sees this trait.

use std::collections::BTreeMap;
use std::time::Duration;

pub type KubeError = Box<dyn std::error::Error + Send + Sync>;

pub trait KubeApi: Send + Sync {
    /// Applies a deny-all (ingress and egress) NetworkPolicy selecting the pod; returns the
    /// policy's name.
    fn isolate_pod(&self, namespace: &str, pod: &str) -> Result<String, KubeError>;
    /// Deletes the policy `isolate_pod` applied.
    fn release_pod(&self, namespace: &str, pod: &str) -> Result<(), KubeError>;
    /// Deletes the pod with a grace period; its controller recreates it from the image.
    fn delete_pod(&self, namespace: &str, pod: &str, grace: Duration) -> Result<(), KubeError>;
    /// Asks the eviction API (honours PodDisruptionBudgets).
    fn evict_pod(&self, namespace: &str, pod: &str) -> Result<(), KubeError>;
    /// Sets labels (`None` removes one) with a merge patch.
    fn label_pod(
        &self,
        namespace: &str,
        pod: &str,
        labels: &BTreeMap<String, Option<String>>,
    ) -> Result<(), KubeError>;
}
