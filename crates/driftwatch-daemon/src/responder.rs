//! The responder the daemon runs (`response.playbook`): its playbooks read and checked, and
//! the Kubernetes client its pod actions use.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use driftwatch_kube::{KubeClient, KubeConfig};
use driftwatch_response::actions::kube::KubeApi;
use driftwatch_response::{LoadError, PlaybookSet, Responder, ResponderConfig};

/// The Kubernetes client `response.kubeconfig` or `response.in_cluster` ask for. Without
/// one, pod alerts get the node-local actions only.
pub fn kube_client(
    response: &driftwatch_config::ResponseConfig,
) -> anyhow::Result<Option<Arc<dyn KubeApi>>> {
    kube_client_for(response.kubeconfig.as_deref(), response.in_cluster)
}

/// The client of this kubeconfig's current context, or of the pod's service account.
pub fn kube_client_for(
    kubeconfig: Option<&Path>,
    in_cluster: bool,
) -> anyhow::Result<Option<Arc<dyn KubeApi>>> {
    let config = match (kubeconfig, in_cluster) {
        (Some(p), _) => {
            KubeConfig::from_kubeconfig(p).with_context(|| format!("kubeconfig {}", p.display()))?
        }
        (None, true) => KubeConfig::in_cluster().context("in-cluster Kubernetes config")?,
        (None, false) => return Ok(None),
    };
    let client = KubeClient::new(config).context("Kubernetes client")?;
    tracing::info!("kubernetes: pod actions through {}", client.server());
    Ok(Some(Arc::new(client)))
}

/// Loads a playbook file; every problem in it, rendered.
pub fn load_playbooks(playbook: &Path) -> anyhow::Result<PlaybookSet> {
    PlaybookSet::load_file(playbook).map_err(|e| match e {
        LoadError::Invalid {
            diagnostics: errs, ..
        } => anyhow::anyhow!(
            "the playbook file does not load:\n{}",
            errs.iter()
                .map(|e| e.render())
                .collect::<Vec<_>>()
                .join("\n")
        ),
        other => anyhow::anyhow!(other),
    })
}

/// Starts the responder with the playbooks loaded from `playbook`, acting on containers
/// through Docker's socket and containerd's (a Kubernetes node's pods), whichever are given.
#[expect(
    clippy::too_many_arguments,
    reason = "one caller, each argument a distinct piece of the resolved configuration"
)]
pub fn start_responder_with(
    set: PlaybookSet,
    playbook: &Path,
    actions_log: &Path,
    docker_socket: Option<PathBuf>,
    containerd: Option<driftwatch_runtime::ContainerdConfig>,
    alerts_file: Option<PathBuf>,
    kube: Option<Arc<dyn KubeApi>>,
    action_mirror: Option<driftwatch_response::ActionMirror>,
) -> anyhow::Result<Arc<Responder>> {
    let n = set.playbooks.len();
    let responder = Responder::start(ResponderConfig {
        playbooks: set,
        actions_log: actions_log.to_path_buf(),
        docker_socket,
        containerd,
        kube,
        alerts_file,
        queue: driftwatch_response::DEFAULT_QUEUE,
        action_mirror,
    })?;
    tracing::info!(
        "response: {n} playbooks from {}, actions recorded in {}",
        playbook.display(),
        actions_log.display()
    );
    Ok(Arc::new(responder))
}
