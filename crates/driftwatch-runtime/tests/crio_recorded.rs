//! CRI-O through the real `CrioSource` client against a recorded CRI exchange: the answers
//! under `tests/fixtures/crio/` (see its README for where each field's shape comes from)
//! served by a real tonic gRPC server, generated from the same CRI proto, on a unix socket.
//! CRI-O itself cannot run on the build hosts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use containerd_client::tonic::{self, Request, Response, Status};
use driftwatch_model::{ContainerId, Engine};
use driftwatch_runtime::{CrioConfig, CrioSource, EngineEvent, EngineSource, RuntimeError};
use futures_util::StreamExt;
use k8s_cri::v1::image_service_server::{ImageService, ImageServiceServer};
use k8s_cri::v1::runtime_service_server::{RuntimeService, RuntimeServiceServer};
use k8s_cri::v1::*;

const WEB: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
const AGENT: &str = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";
const GARBAGE: &str = "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3";
const GONE: &str = "d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4";
const HANG: &str = "e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5";

/// `over` merged onto `base`, objects key by key, each array item onto the template's first
/// item: a fixture says only what CRI-O fills (Go omits empty fields), the template every
/// field serde of the generated types wants.
fn merge(base: &mut serde_json::Value, over: serde_json::Value) {
    use serde_json::Value;
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (Value::Array(b), Value::Array(o)) if !b.is_empty() => {
            let item = b[0].clone();
            *b = o
                .into_iter()
                .map(|v| {
                    let mut t = item.clone();
                    merge(&mut t, v);
                    t
                })
                .collect();
        }
        (b, o) => *b = o,
    }
}

/// A fixture as message `T`, merged onto `template` (`T`'s default with the sub-messages the
/// fixture fills present).
fn fixture<T: serde::de::DeserializeOwned + serde::Serialize>(name: &str, template: T) -> T {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/crio")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let over: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut v = serde_json::to_value(template).unwrap();
    merge(&mut v, over);
    serde_json::from_value(v).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn container_status_template() -> ContainerStatusResponse {
    ContainerStatusResponse {
        status: Some(ContainerStatus {
            metadata: Some(ContainerMetadata::default()),
            image: Some(ImageSpec::default()),
            ..ContainerStatus::default()
        }),
        ..ContainerStatusResponse::default()
    }
}

fn sandbox_status_template() -> PodSandboxStatusResponse {
    PodSandboxStatusResponse {
        status: Some(PodSandboxStatus {
            metadata: Some(PodSandboxMetadata::default()),
            network: Some(PodSandboxNetworkStatus::default()),
            linux: Some(LinuxPodSandboxStatus {
                namespaces: Some(Namespace {
                    options: Some(NamespaceOption::default()),
                }),
            }),
            ..PodSandboxStatus::default()
        }),
        ..PodSandboxStatusResponse::default()
    }
}

fn image_status_template() -> ImageStatusResponse {
    ImageStatusResponse {
        image: Some(Image::default()),
        ..ImageStatusResponse::default()
    }
}

fn list_template() -> ListContainersResponse {
    ListContainersResponse {
        containers: vec![Container {
            metadata: Some(ContainerMetadata::default()),
            image: Some(ImageSpec::default()),
            ..Container::default()
        }],
    }
}

/// The recorded answers, and what the server does beyond them.
struct Recorded {
    containers: HashMap<String, ContainerStatusResponse>,
    sandboxes: HashMap<String, PodSandboxStatusResponse>,
    images: HashMap<String, ImageStatusResponse>,
    list: Mutex<ListContainersResponse>,
    events: Mutex<Events>,
}

/// How `GetContainerEvents` answers.
#[derive(Clone)]
enum Events {
    /// A stream that ends at once: CRI-O 1.26+ with `enable_pod_events = false`, its default
    /// (`server/container_events.go` returns nil).
    Disabled,
    /// `Unimplemented`: CRI-O before 1.26, which has no such call.
    Unimplemented,
    /// These events, then the stream stays open: CRI-O with `enable_pod_events = true`.
    Stream(Vec<ContainerEventResponse>),
}

fn recorded() -> Recorded {
    let containers = [
        (WEB, "container-status-web.json"),
        (AGENT, "container-status-agent.json"),
        (GARBAGE, "container-status-garbage-info.json"),
    ]
    .into_iter()
    .map(|(id, f)| (id.to_string(), fixture(f, container_status_template())))
    .collect();
    let sandboxes = [
        "pod-sandbox-status-web.json",
        "pod-sandbox-status-node-agent.json",
    ]
    .into_iter()
    .map(|f| {
        let s = fixture(f, sandbox_status_template());
        (s.status.as_ref().unwrap().id.clone(), s)
    })
    .collect();
    let images = [
        ("docker.io/library/nginx:1.27", "image-status-nginx.json"),
        (
            "registry.example.com/team/agent:2.1",
            "image-status-agent.json",
        ),
    ]
    .into_iter()
    .map(|(name, f)| (name.to_string(), fixture(f, image_status_template())))
    .collect();
    Recorded {
        containers,
        sandboxes,
        images,
        list: Mutex::new(fixture("list-containers.json", list_template())),
        events: Mutex::new(Events::Disabled),
    }
}

#[derive(Clone)]
struct Server(Arc<Recorded>);

/// Calls the recording has no answer for. Written out in the shape `#[async_trait]` gives
/// trait methods, since the attribute does not see into macro invocations.
macro_rules! not_recorded {
    ($($name:ident($req:ident) -> $resp:ident;)*) => {
        $(
            fn $name<'life0, 'async_trait>(
                &'life0 self,
                _: Request<$req>,
            ) -> std::pin::Pin<
                Box<
                    dyn std::future::Future<Output = Result<Response<$resp>, Status>>
                        + Send
                        + 'async_trait,
                >,
            >
            where
                'life0: 'async_trait,
                Self: 'async_trait,
            {
                Box::pin(async {
                    Err(Status::unimplemented(concat!(
                        stringify!($name),
                        " is not part of the recording"
                    )))
                })
            }
        )*
    };
}

type EventStream = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<ContainerEventResponse, Status>> + Send>,
>;

#[tonic::async_trait]
impl RuntimeService for Server {
    async fn version(
        &self,
        _: Request<VersionRequest>,
    ) -> Result<Response<VersionResponse>, Status> {
        Ok(Response::new(VersionResponse {
            version: "0.1.0".into(),
            runtime_name: "cri-o".into(),
            runtime_version: "1.31.0".into(),
            runtime_api_version: "v1".into(),
        }))
    }

    async fn container_status(
        &self,
        r: Request<ContainerStatusRequest>,
    ) -> Result<Response<ContainerStatusResponse>, Status> {
        let id = r.into_inner().container_id;
        if id == HANG {
            futures_util::future::pending::<()>().await;
        }
        // CRI-O's own words for an unknown container (server/container_status.go).
        self.0
            .containers
            .get(&id)
            .cloned()
            .map(Response::new)
            .ok_or_else(|| {
                Status::not_found(format!(
                    "could not find container {id:?}: container with ID starting with {id} not found: ID does not exist"
                ))
            })
    }

    async fn pod_sandbox_status(
        &self,
        r: Request<PodSandboxStatusRequest>,
    ) -> Result<Response<PodSandboxStatusResponse>, Status> {
        let id = r.into_inner().pod_sandbox_id;
        self.0
            .sandboxes
            .get(&id)
            .cloned()
            .map(Response::new)
            .ok_or_else(|| Status::not_found(format!("could not find pod {id:?}")))
    }

    async fn list_containers(
        &self,
        r: Request<ListContainersRequest>,
    ) -> Result<Response<ListContainersResponse>, Status> {
        let want = r.into_inner().filter.and_then(|f| f.state).map(|s| s.state);
        let mut list = self.0.list.lock().unwrap().clone();
        list.containers
            .retain(|c| want.is_none_or(|s| c.state == s));
        Ok(Response::new(list))
    }

    type GetContainerEventsStream = EventStream;

    async fn get_container_events(
        &self,
        _: Request<GetEventsRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let events = match self.0.events.lock().unwrap().clone() {
            Events::Disabled => Vec::new(),
            Events::Unimplemented => {
                return Err(Status::unimplemented(
                    "unknown method GetContainerEvents for service runtime.v1.RuntimeService",
                ));
            }
            Events::Stream(events) => events,
        };
        let stream: EventStream = if events.is_empty() {
            Box::pin(futures_util::stream::empty())
        } else {
            Box::pin(
                futures_util::stream::iter(events.into_iter().map(Ok))
                    .chain(futures_util::stream::pending()),
            )
        };
        Ok(Response::new(stream))
    }

    not_recorded! {
        run_pod_sandbox(RunPodSandboxRequest) -> RunPodSandboxResponse;
        stop_pod_sandbox(StopPodSandboxRequest) -> StopPodSandboxResponse;
        remove_pod_sandbox(RemovePodSandboxRequest) -> RemovePodSandboxResponse;
        list_pod_sandbox(ListPodSandboxRequest) -> ListPodSandboxResponse;
        create_container(CreateContainerRequest) -> CreateContainerResponse;
        start_container(StartContainerRequest) -> StartContainerResponse;
        stop_container(StopContainerRequest) -> StopContainerResponse;
        remove_container(RemoveContainerRequest) -> RemoveContainerResponse;
        update_container_resources(UpdateContainerResourcesRequest) -> UpdateContainerResourcesResponse;
        reopen_container_log(ReopenContainerLogRequest) -> ReopenContainerLogResponse;
        exec_sync(ExecSyncRequest) -> ExecSyncResponse;
        exec(ExecRequest) -> ExecResponse;
        attach(AttachRequest) -> AttachResponse;
        port_forward(PortForwardRequest) -> PortForwardResponse;
        container_stats(ContainerStatsRequest) -> ContainerStatsResponse;
        list_container_stats(ListContainerStatsRequest) -> ListContainerStatsResponse;
        pod_sandbox_stats(PodSandboxStatsRequest) -> PodSandboxStatsResponse;
        list_pod_sandbox_stats(ListPodSandboxStatsRequest) -> ListPodSandboxStatsResponse;
        update_runtime_config(UpdateRuntimeConfigRequest) -> UpdateRuntimeConfigResponse;
        status(StatusRequest) -> StatusResponse;
        checkpoint_container(CheckpointContainerRequest) -> CheckpointContainerResponse;
        list_metric_descriptors(ListMetricDescriptorsRequest) -> ListMetricDescriptorsResponse;
        list_pod_sandbox_metrics(ListPodSandboxMetricsRequest) -> ListPodSandboxMetricsResponse;
        runtime_config(RuntimeConfigRequest) -> RuntimeConfigResponse;
    }
}

#[tonic::async_trait]
impl ImageService for Server {
    async fn image_status(
        &self,
        r: Request<ImageStatusRequest>,
    ) -> Result<Response<ImageStatusResponse>, Status> {
        let name = r.into_inner().image.map(|i| i.image).unwrap_or_default();
        // CRI-O answers an unknown image with an empty response, not an error.
        Ok(Response::new(
            self.0.images.get(&name).cloned().unwrap_or_default(),
        ))
    }

    not_recorded! {
        list_images(ListImagesRequest) -> ListImagesResponse;
        pull_image(PullImageRequest) -> PullImageResponse;
        remove_image(RemoveImageRequest) -> RemoveImageResponse;
        image_fs_info(ImageFsInfoRequest) -> ImageFsInfoResponse;
    }
}

/// The recording served on a unix socket in a temp dir; dropped, the server stops.
struct Served {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    recorded: Arc<Recorded>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn serve() -> Served {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("crio.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let recorded = Arc::new(recorded());
    let server = Server(recorded.clone());
    let task = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(RuntimeServiceServer::new(server.clone()))
            .add_service(ImageServiceServer::new(server))
            .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener))
            .await
            .unwrap();
    });
    Served {
        _dir: dir,
        socket,
        recorded,
        task,
    }
}

fn source(s: &Served) -> CrioSource {
    CrioSource::new(CrioConfig {
        socket: s.socket.clone(),
        timeout: Duration::from_millis(500),
        poll_interval: Duration::from_millis(100),
        ..CrioConfig::default()
    })
}

fn cid(id: &str) -> ContainerId {
    ContainerId::new(id).unwrap()
}

#[tokio::test]
async fn a_pod_container_with_its_pod_image_and_runtime_config() {
    let served = serve();
    let src = source(&served);
    src.ping().await.unwrap();
    let r = src.inspect(&cid(WEB)).await.unwrap();
    assert_eq!(r.meta.engine, Engine::Crio);
    assert_eq!(r.meta.name, "web");
    assert!(r.running);
    assert_eq!(r.pid, Some(31337));
    assert_eq!(r.started_at_ns, Some(1_765_100_001_000_000_000));
    assert_eq!(r.meta.image.display_name(), "docker.io/library/nginx:1.27");
    assert_eq!(
        r.meta.image.digest.as_deref(),
        Some(format!("sha256:{}", "9d".repeat(32)).as_str())
    );
    assert_eq!(
        r.meta.image.id.as_deref(),
        Some(format!("sha256:6f3c1d9e8b7a{}", "0".repeat(52)).as_str())
    );
    let pod = r.meta.k8s.as_ref().unwrap();
    assert_eq!(
        (
            pod.namespace.as_str(),
            pod.pod_name.as_str(),
            pod.pod_uid.as_str(),
            pod.container_name.as_str()
        ),
        (
            "shop",
            "web-7d9f",
            "7f0c2a4e-1b9d-4c3e-8a6f-2d5e9b1c0a11",
            "web"
        )
    );
    assert_eq!(pod.labels["app"], "web");
    assert_eq!(pod.labels["app.kubernetes.io/part-of"], "shop");
    // The kubelet's own sandbox labels are not the pod's.
    assert!(
        !pod.labels.keys().any(|k| k.starts_with("io.kubernetes.")),
        "{:?}",
        pod.labels
    );
    assert_eq!(r.meta.entrypoint, ["nginx", "-g", "daemon off;"]);
    assert!(r.env.iter().any(|e| e == "NGINX_VERSION=1.27.0"));
    // The image's EXPOSE and the pod spec's containerPort (the kubelet's annotation).
    assert_eq!(r.exposed_ports, ["80/tcp", "8080/tcp"]);
    // Falco's container.privileged and container.start_ts, as CRI-O said them.
    assert_eq!(r.meta.privileged, Some(false));
    assert_eq!(r.meta.started_ns, Some(1_765_100_001_000_000_000));
    let c = &r.runtime_config;
    assert!(!c.privileged);
    assert_eq!(c.added_capabilities(), ["CAP_NET_ADMIN"]);
    assert!(c.cap_drop.is_empty());
    // Joined the sandbox's pinned namespaces: no host namespace.
    assert!(c.host_namespaces().is_empty(), "{c:?}");
    // Only the hostPath: the kubelet's and CRI-O's own mounts are not volumes.
    assert_eq!(c.mounts.len(), 1, "{:?}", c.mounts);
    assert_eq!(
        (
            c.mounts[0].kind.as_str(),
            c.mounts[0].source.as_path(),
            c.mounts[0].rw
        ),
        ("bind", Path::new("/var/log"), false)
    );
    assert_eq!(c.security_opt("seccomp"), None);
    let image = c.image.as_ref().unwrap();
    assert_eq!(image.user, "");
    assert_eq!(image.diff_ids.len(), 2);
    assert_eq!(c.image_reference, "docker.io/library/nginx:1.27");
}

#[tokio::test]
async fn a_privileged_host_network_pod() {
    let served = serve();
    let r = source(&served).inspect(&cid(AGENT)).await.unwrap();
    assert_eq!(r.meta.privileged, Some(true));
    let c = &r.runtime_config;
    assert!(c.privileged);
    assert_eq!(c.host_namespaces(), ["network", "uts"]);
    assert_eq!(c.security_opt("seccomp"), Some("unconfined"));
    let pod = r.meta.k8s.unwrap();
    assert_eq!(
        (pod.namespace.as_str(), pod.pod_name.as_str()),
        ("monitoring", "node-agent-q8x2z")
    );
    assert_eq!(pod.labels["app"], "node-agent");
    assert!(r.exposed_ports.is_empty());
    assert_eq!(
        r.meta.image.id.as_deref(),
        Some(format!("sha256:{}", "7e".repeat(32)).as_str())
    );
}

#[tokio::test]
async fn listing_skips_a_container_that_vanished() {
    let served = serve();
    let src = source(&served);
    let e = src.inspect(&cid(GONE)).await.unwrap_err();
    assert!(matches!(e, RuntimeError::NotFound { .. }), "{e}");
    assert!(e.to_string().contains(GONE), "{e}");
    let ids: Vec<String> = src
        .list_running()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.meta.id.as_str().to_string())
        .collect();
    assert_eq!(ids, [WEB, AGENT]);
}

#[tokio::test]
async fn a_runtime_that_hangs_times_out() {
    let served = serve();
    let t = Instant::now();
    let e = source(&served).inspect(&cid(HANG)).await.unwrap_err();
    assert!(matches!(e, RuntimeError::Timeout { .. }), "{e}");
    assert!(e.to_string().starts_with("cri-o: "), "{e}");
    assert!(t.elapsed() < Duration::from_secs(3));
}

/// Log lines, captured.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn garbage_in_info_is_a_warning_naming_the_container() {
    let served = serve();
    let logs = Captured::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let r = source(&served).inspect(&cid(GARBAGE)).await.unwrap();
    // Identity and image still; no pod (its labels claim one: they are not the runtime's
    // word), no pid, no runtime config.
    assert_eq!(r.meta.name, "broken");
    assert_eq!(r.meta.labels["io.kubernetes.pod.name"], "payments-0");
    assert_eq!(r.meta.k8s, None);
    assert_eq!(r.pid, None);
    assert!(!r.runtime_config.privileged && r.runtime_config.mounts.is_empty());
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("WARN") && text.contains(GARBAGE) && text.contains("verbose info"),
        "{text}"
    );
}

#[tokio::test]
async fn without_streamed_events_the_listing_is_polled() {
    for how in [Events::Disabled, Events::Unimplemented] {
        polled_listing_gives_events(how).await;
    }
}

async fn polled_listing_gives_events(how: Events) {
    let served = serve();
    *served.recorded.events.lock().unwrap() = how;
    let mut events = source(&served).events();
    // Subscribing falls back to polling, whose first listing is the baseline: nothing yet.
    let quiet = tokio::time::timeout(Duration::from_millis(400), events.next()).await;
    assert!(quiet.is_err(), "{quiet:?}");
    // Then a container appears and another vanishes.
    {
        let mut list = served.recorded.list.lock().unwrap();
        list.containers.retain(|c| c.id != GONE);
        let mut new = list.containers[0].clone();
        new.id = GARBAGE.into();
        list.containers.push(new);
    }
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.len() < 4 && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(2), events.next()).await {
            Ok(Some(ev)) => seen.push(ev),
            _ => break,
        }
    }
    assert_eq!(
        seen,
        [
            EngineEvent::Created(cid(GARBAGE)),
            EngineEvent::Started(cid(GARBAGE)),
            EngineEvent::Died(cid(GONE)),
            EngineEvent::Destroyed(cid(GONE)),
        ]
    );
}

#[tokio::test]
async fn streamed_events_are_taken_as_they_come() {
    let served = serve();
    let event = |id: &str, kind: i32| ContainerEventResponse {
        container_id: id.into(),
        container_event_type: kind,
        ..ContainerEventResponse::default()
    };
    // CONTAINER_CREATED_EVENT .. CONTAINER_DELETED_EVENT, and one of a kind unknown here.
    *served.recorded.events.lock().unwrap() = Events::Stream(vec![
        event(WEB, 0),
        event(WEB, 1),
        event(WEB, 7),
        event("not-an-id", 1),
        event(WEB, 2),
        event(WEB, 3),
    ]);
    let events = source(&served).events();
    let seen: Vec<EngineEvent> =
        tokio::time::timeout(Duration::from_secs(5), events.take(4).collect())
            .await
            .expect("four events");
    assert_eq!(
        seen,
        [
            EngineEvent::Created(cid(WEB)),
            EngineEvent::Started(cid(WEB)),
            EngineEvent::Died(cid(WEB)),
            EngineEvent::Destroyed(cid(WEB)),
        ]
    );
}

#[tokio::test]
async fn no_crio_is_a_clear_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let src = CrioSource::new(CrioConfig {
        socket: dir.path().join("crio.sock"),
        ..CrioConfig::default()
    });
    let e = src.ping().await.unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("crio.sock") && msg.contains("is crio running"),
        "{msg}"
    );
}
