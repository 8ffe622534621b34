//! The Kubernetes seam: what the pod actions ask of the API server, implemented here for
//! `driftwatch-kube`'s [`KubeClient`]; the executor only sees the trait.

use std::collections::BTreeMap;
use std::time::Duration;

use driftwatch_kube::KubeClient;

pub type KubeActionError = Box<dyn std::error::Error + Send + Sync>;

pub trait KubeApi: Send + Sync {
    /// Applies a deny-all (ingress and egress) NetworkPolicy selecting the pod; returns the
    /// policy's name.
    fn isolate_pod(&self, namespace: &str, pod: &str) -> Result<String, KubeActionError>;
    /// Deletes the policy `isolate_pod` applied.
    fn release_pod(&self, namespace: &str, pod: &str) -> Result<(), KubeActionError>;
    /// Deletes the pod of uid `uid` with a grace period (its controller recreates it from the
    /// image); another pod under that name is left alone (409).
    fn delete_pod(
        &self,
        namespace: &str,
        pod: &str,
        uid: &str,
        grace: Duration,
    ) -> Result<(), KubeActionError>;
    /// Asks the eviction API (honours PodDisruptionBudgets), with the same uid precondition.
    fn evict_pod(&self, namespace: &str, pod: &str, uid: &str) -> Result<(), KubeActionError>;
    /// Sets labels (`None` removes one) with a merge patch.
    fn label_pod(
        &self,
        namespace: &str,
        pod: &str,
        labels: &BTreeMap<String, Option<String>>,
    ) -> Result<(), KubeActionError>;
}

impl KubeApi for KubeClient {
    fn isolate_pod(&self, namespace: &str, pod: &str) -> Result<String, KubeActionError> {
        Ok(KubeClient::isolate_pod(self, namespace, pod)?)
    }

    fn release_pod(&self, namespace: &str, pod: &str) -> Result<(), KubeActionError> {
        Ok(KubeClient::release_pod(self, namespace, pod)?)
    }

    fn delete_pod(
        &self,
        namespace: &str,
        pod: &str,
        uid: &str,
        grace: Duration,
    ) -> Result<(), KubeActionError> {
        let secs = u32::try_from(grace.as_secs()).unwrap_or(u32::MAX);
        Ok(KubeClient::delete_pod(
            self,
            namespace,
            pod,
            Some(secs),
            Some(uid),
        )?)
    }

    fn evict_pod(&self, namespace: &str, pod: &str, uid: &str) -> Result<(), KubeActionError> {
        Ok(KubeClient::evict_pod(self, namespace, pod, Some(uid))?)
    }

    fn label_pod(
        &self,
        namespace: &str,
        pod: &str,
        labels: &BTreeMap<String, Option<String>>,
    ) -> Result<(), KubeActionError> {
        Ok(KubeClient::label_pod(self, namespace, pod, labels)?)
    }
}
