//! One fresh database per test: SQLite by default, PostgreSQL when `DESHPAY_TEST_POSTGRES` says so.

/// A fresh database for one test: a SQLite file in `dir`, or, when `DESHPAY_TEST_POSTGRES` holds a server URL
/// (e.g. `postgres://postgres@127.0.0.1:5432/test`), a new PostgreSQL database on that server, dropped when the
/// returned guard drops.
pub async fn test_database(dir: &std::path::Path) -> (String, Option<PgDatabase>) {
    match std::env::var("DESHPAY_TEST_POSTGRES") {
        Ok(server) if !server.is_empty() => {
            let db = PgDatabase::create(&server).await;
            (db.url.clone(), Some(db))
        }
        _ => (format!("sqlite://{}", dir.join("deshpay.db").display()), None),
    }
}

/// A throwaway PostgreSQL database.
#[derive(Debug)]
pub struct PgDatabase {
    pub url: String,
    server: String,
    name: String,
}

impl PgDatabase {
    pub async fn create(server: &str) -> PgDatabase {
        use sqlx::Connection;
        let name = format!("deshpay_t_{}", crate::rand_suffix().replace('-', "_"));
        let mut conn = sqlx::PgConnection::connect(server).await.expect("PostgreSQL at DESHPAY_TEST_POSTGRES");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create database");
        let base = server.rsplit_once('/').map_or(server, |(b, _)| b);
        PgDatabase { url: format!("{base}/{name}"), server: server.to_owned(), name }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop runs outside async: a short-lived runtime on its own thread removes the database.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&server).await {
                    let _ =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await;
                }
            });
        })
        .join();
    }
}
