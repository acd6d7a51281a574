//! An actix-web app of your own with queuewatch mounted beside its routes.
//!
//! ```sh
//! cargo run --example actix_web_app      # then open http://127.0.0.1:8080/
//! curl http://127.0.0.1:8080/hello       # your route
//! curl http://127.0.0.1:8080/busiest     # your route, answered from the queuewatch Handle
//! curl http://127.0.0.1:8080/api/queues  # queuewatch's status API
//! ```
//!
//! Shared actors start before `HttpServer::new`; the factory closure only
//! clones the cheap `Handle` into each worker.

use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use queuewatch::config::Settings;
use queuewatch::{Event, Handle, QueueWatch};

/// Your app's routes plus queuewatch's, for one `App`.
pub fn routes(handle: Handle) -> impl Fn(&mut web::ServiceConfig) + Clone {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::new(handle.clone()))
            .route("/hello", web::get().to(hello))
            .route("/busiest", web::get().to(busiest))
            .configure(queuewatch::web::configure(handle.clone()));
    }
}

async fn hello() -> HttpResponse {
    HttpResponse::Ok().body("hello from the host app\n")
}

/// The queue with the longest estimated wait right now.
async fn busiest(handle: web::Data<Handle>) -> HttpResponse {
    let busiest = handle
        .queues()
        .await
        .into_iter()
        .filter_map(|q| match q.last_event {
            Some(Event::Poll(poll)) => poll.estimated_wait_seconds.map(|w| (w, poll)),
            _ => None,
        })
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match busiest {
        Some((wait, poll)) => HttpResponse::Ok().json(serde_json::json!({
            "queue_id": poll.queue_id,
            "queue_name": poll.queue_name,
            "estimated_wait_seconds": wait,
        })),
        None => {
            HttpResponse::ServiceUnavailable().json(serde_json::json!({"error": "no data yet"}))
        }
    }
}

/// Two simulated queues; queuewatch's own HTTP server is off (we serve it).
pub fn demo_settings() -> Settings {
    let mut settings = Settings::for_queues([
        "0b6c3b7e-4f1d-4c57-9a8e-3f1f2d7c9a10",
        "1c7d4c8f-5a2e-4d68-8b9f-4a2a3e8d0b21",
    ]);
    settings.poll.interval = Duration::from_secs(5);
    settings.callbacks.clear();
    settings.http.bind = None;
    settings
}

#[actix_rt::main]
async fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let handle = QueueWatch::new(demo_settings())
        .start()
        .await
        .map_err(std::io::Error::other)?;
    let app_handle = handle.clone();
    println!("serving on http://127.0.0.1:8080/ (Ctrl-C to stop)");
    HttpServer::new(move || App::new().configure(routes(app_handle.clone())))
        .bind("127.0.0.1:8080")?
        .run()
        .await?;
    handle.shutdown().await;
    Ok(())
}
