//! Serving: the router with its limits (tower layers), the render threads for heavy pages,
//! and the connection loop (hyper-util's builder, with a header-read timeout, an idle timeout,
//! a bound on connections, and graceful shutdown with a deadline).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinSet;
use tower::util::BoxCloneSyncService;
use tower::{BoxError, ServiceBuilder, ServiceExt as _};

use super::pages::{feed_page, plain, profile_page, stats_page};
use super::{App, Config, loopback};

/// A heavy page's render, handed to the render threads.
pub(super) type Job = Pin<Box<dyn Future<Output = Response> + Send + 'static>>;

/// A [`Job`] as the render lane's request (a type without lifetimes to infer).
pub(super) struct RenderJob(Job);

/// `503` with `Retry-After: 1`.
fn unavailable(message: String) -> Response {
    let mut response = plain(StatusCode::SERVICE_UNAVAILABLE, format!("{message}\n"));
    let retry = HeaderValue::from_static("1");
    response.headers_mut().insert(header::RETRY_AFTER, retry);
    response
}

/// What a request refused by a limit gets.
fn refusal(app: &App, error: &BoxError) -> Response {
    if error.is::<tower::load_shed::error::Overloaded>() {
        app.refused.fetch_add(1, Ordering::Relaxed);
        let config = &app.config;
        unavailable(format!(
            "overloaded: {} pages rendering and {} waiting; try again shortly",
            config.max_renders, config.max_queued
        ))
    } else if error.is::<tower::timeout::error::Elapsed>() {
        app.timed_out.fetch_add(1, Ordering::Relaxed);
        unavailable(format!(
            "the page was not ready within the request timeout of {:?}",
            app.config.request_timeout
        ))
    } else {
        plain(StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n"))
    }
}

/// The service: `/stats` always, the pages behind the limits.
fn router(app: &Arc<App>) -> Router {
    let pages = Router::new()
        .route("/profile/{uid}", get(profile_page))
        .route("/feed", get(feed_page))
        .route(
            "/graphql",
            get(super::graphql::graphql_get)
                .post(super::graphql::graphql_post)
                .layer(DefaultBodyLimit::max(super::graphql::MAX_BODY)),
        )
        .with_state(Arc::clone(app));
    let on_error = {
        let app = Arc::clone(app);
        move |error: BoxError| {
            let app = Arc::clone(&app);
            async move { refusal(&app, &error) }
        }
    };
    let config = &app.config;
    // Admitted: `max_renders` rendering and `max_queued` waiting (the outer limit counts
    // both, so the bound is exact); the rest shed. The buffer never fills: it only queues.
    let admitted = config.max_renders + config.max_queued;
    let limited = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(on_error))
        .timeout(config.request_timeout)
        .load_shed()
        .concurrency_limit(admitted)
        .buffer(admitted)
        .concurrency_limit(config.max_renders)
        .service(pages);
    Router::new()
        .route("/stats", get(stats_page))
        .with_state(Arc::clone(app))
        .fallback_service(limited)
}

/// A tokio runtime of its own for heavy pages, shut down without blocking when dropped.
#[derive(Debug)]
struct Threads(Option<tokio::runtime::Runtime>);

impl Drop for Threads {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// How much lower the render threads' scheduling priority is than the rest of the process
/// (a nice value added, on Linux): when the cores are busy, the threads serving connections
/// and small pages get them first, and heavy pages the rest.
const RENDER_NICENESS: i32 = 10;

/// Lower the calling thread's priority by [`RENDER_NICENESS`] (Linux; elsewhere nothing).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain system calls on the calling thread's own id, no pointers involved;
        // a failure (no permission) leaves the priority as it was, which is harmless.
        unsafe {
            let tid = libc::gettid();
            let now = libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t);
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, now + RENDER_NICENESS);
        }
    }
}

/// A task on the render threads, aborted (its run cancelled) when the request is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<Response>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The render threads and the lane in front of them: at most `render_threads` heavy pages at
/// once, `heavy_queued` waiting, the rest refused.
pub(super) struct Renderer {
    lane: BoxCloneSyncService<RenderJob, Response, BoxError>,
    _threads: Threads,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer").finish_non_exhaustive()
    }
}

impl Renderer {
    /// Start the threads; call inside tokio (the lane's queue has a task of its own).
    fn start(config: &Config) -> io::Result<Renderer> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.render_threads)
            .thread_name("asynq-render")
            .on_thread_start(lower_priority)
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let admitted = config.render_threads + config.heavy_queued;
        let lane = ServiceBuilder::new()
            .load_shed()
            .concurrency_limit(admitted)
            .buffer(admitted)
            .concurrency_limit(config.render_threads)
            .service_fn(move |RenderJob(job)| {
                let mut task = AbortOnDrop(handle.spawn(job));
                async move { (&mut task.0).await.map_err(BoxError::from) }
            });
        Ok(Renderer {
            lane: BoxCloneSyncService::new(lane),
            _threads: Threads(Some(runtime)),
        })
    }

    /// Render `job` on the render threads, or refuse it when they and their queue are full.
    pub(super) async fn render(&self, app: &App, job: Job) -> Response {
        match self.lane.clone().oneshot(RenderJob(job)).await {
            Ok(response) => response,
            Err(error) if error.is::<tower::load_shed::error::Overloaded>() => {
                app.refused.fetch_add(1, Ordering::Relaxed);
                unavailable(format!(
                    "overloaded: {} heavy pages rendering and {} waiting; try again shortly",
                    app.config.render_threads, app.config.heavy_queued
                ))
            }
            Err(error) => plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the render failed: {error}\n"),
            ),
        }
    }
}

/// A server serving on a loopback port; stops when shut down or dropped.
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    app: Arc<App>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// The address it listens on, `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The app it serves.
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Stop accepting, let the requests in progress finish for at most
    /// [`Config::shutdown_grace`], close every connection, and wait for it.
    pub async fn shutdown(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(io::Error::other),
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Open the app for `config` and serve it on 127.0.0.1:`port` (0: a free port), on the
/// current tokio runtime. Returns once the listener is bound.
pub async fn start(config: Config, port: u16) -> io::Result<Running> {
    let app = tokio::task::spawn_blocking(move || App::open(config))
        .await
        .map_err(io::Error::other)?
        .map_err(io::Error::other)?;
    serve(Arc::new(app), port).await
}

/// Serve `app` on 127.0.0.1:`port` (0: a free port), on the current tokio runtime.
pub async fn serve(app: Arc<App>, port: u16) -> io::Result<Running> {
    let listener = TcpListener::bind(loopback(port)).await?;
    let addr = listener.local_addr()?;
    if app.renderer.get().is_none() {
        let _ = app.renderer.set(Renderer::start(&app.config)?);
    }
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(accept(listener, router(&app), app.config.clone(), stopped));
    Ok(Running {
        addr,
        app,
        stop: Some(stop),
        task: Some(task),
    })
}

/// Accept connections until `stop`, serving each on a task of its own; then shut down.
async fn accept(
    listener: TcpListener,
    router: Router,
    config: Config,
    mut stop: oneshot::Receiver<()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let mut connections = JoinSet::new();
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot.expect("the semaphore is never closed"),
            _ = &mut stop => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors, or a connection reset before it was accepted:
                // wait a little and go on, instead of spinning or stopping.
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let mut timed = tokio_io_timeout::TimeoutStream::new(stream);
        timed.set_read_timeout(Some(config.idle_timeout));
        timed.set_write_timeout(Some(config.idle_timeout));
        let io = TokioIo::new(Box::pin(timed));
        let service = TowerToHyperService::new(router.clone());
        let connection = builder.serve_connection(io, service).into_owned();
        let connection = graceful.watch(connection);
        connections.spawn(async move {
            let _ = connection.await;
            drop(slot);
        });
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let grace = config.shutdown_grace;
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        eprintln!(
            "server: {} connection(s) still open after the shutdown grace of {grace:?}: closed",
            connections.len()
        );
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}
