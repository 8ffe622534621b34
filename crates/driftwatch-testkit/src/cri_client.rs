//! The CRI gRPC client of a [`CriNode`](crate::CriNode) and its pods: containerd's unix
//! socket, and a single-threaded runtime that each call blocks on (tests are synchronous).

use std::path::Path;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::{Channel, Endpoint, Uri};

/// The CRI client and the runtime it runs on, shared by the node and its pods.
pub(crate) struct CriClient {
    rt: tokio::runtime::Runtime,
    channel: Channel,
}

impl CriClient {
    pub(crate) fn connect(socket: &Path) -> Result<CriClient, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        let path = socket.to_path_buf();
        let channel = rt.block_on(async move {
            // The URI is never dialled: the connector opens the socket.
            Endpoint::try_from("http://[::]:50051")
                .map_err(|e| e.to_string())?
                .connect_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(120))
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move {
                        Ok::<_, std::io::Error>(TokioIo::new(
                            tokio::net::UnixStream::connect(path).await?,
                        ))
                    }
                }))
                .await
                .map_err(|e| format!("connecting to {}: {e}", socket.display()))
        })?;
        Ok(CriClient { rt, channel })
    }

    /// Runs one RPC: `call` gets a fresh client (tonic clients are a handle on the channel).
    pub(crate) fn call<T, F>(
        &self,
        what: &str,
        call: impl FnOnce(RuntimeServiceClient<Channel>) -> F,
    ) -> T
    where
        F: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.try_call(call)
            .unwrap_or_else(|s| panic!("CRI {what}: {} ({:?})", s.message(), s.code()))
    }

    pub(crate) fn try_call<T, F>(
        &self,
        call: impl FnOnce(RuntimeServiceClient<Channel>) -> F,
    ) -> Result<T, tonic::Status>
    where
        F: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let client = RuntimeServiceClient::new(self.channel.clone());
        self.rt
            .block_on(call(client))
            .map(tonic::Response::into_inner)
    }

    pub(crate) fn image_id(&self, image: &str) -> Option<String> {
        let client =
            k8s_cri::v1::image_service_client::ImageServiceClient::new(self.channel.clone());
        let spec = cri::ImageSpec {
            image: image.to_string(),
            ..Default::default()
        };
        self.rt
            .block_on(async move {
                let mut client = client;
                client
                    .image_status(cri::ImageStatusRequest {
                        image: Some(spec),
                        verbose: false,
                    })
                    .await
            })
            .ok()
            .and_then(|r| r.into_inner().image)
            .map(|i| i.id)
    }

    pub(crate) fn remove_sandbox(&self, id: &str) {
        let stop = id.to_string();
        let _ = self.try_call(|mut c| async move {
            c.stop_pod_sandbox(cri::StopPodSandboxRequest {
                pod_sandbox_id: stop,
            })
            .await
        });
        let remove = id.to_string();
        let _ = self.try_call(|mut c| async move {
            c.remove_pod_sandbox(cri::RemovePodSandboxRequest {
                pod_sandbox_id: remove,
            })
            .await
        });
    }
}
