//! TLS to the database, through rustls: which roots to trust, and when TLS is on by
//! default.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::{self, PemObject};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::PostgresError;

/// Whether and how the connections to the database are encrypted
/// ([`PostgresOptions::tls`](crate::PostgresOptions::tls)).
///
/// When the options do not say, the connection string's `sslmode` decides
/// (`disable`: [`TlsMode::Disable`]; `require`: [`TlsMode::Require`] with the
/// system's roots); when it does not say either (or says `prefer`), the host does: a
/// loopback address, `localhost` or a Unix socket gets [`TlsMode::Disable`], any other
/// host [`TlsMode::Require`] with the system's roots. A connection never falls back
/// from TLS to plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsMode {
    /// Plaintext, no TLS.
    Disable,
    /// TLS, and the server's certificate must be valid for the host name the
    /// connection string gives and chain to one of these roots (libpq's
    /// `sslmode=verify-full`). A server that does not speak TLS is refused.
    Require(TlsRoots),
}

impl TlsMode {
    /// [`TlsMode::Require`] trusting the operating system's roots.
    pub fn system_roots() -> Self {
        TlsMode::Require(TlsRoots::System)
    }

    /// [`TlsMode::Require`] trusting only the certificates of this PEM file.
    pub fn ca_file(path: impl Into<PathBuf>) -> Self {
        TlsMode::Require(TlsRoots::CaFile(path.into()))
    }
}

/// The certificate authorities a TLS connection trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsRoots {
    /// The operating system's trusted roots, read when the store is opened (with
    /// `rustls-native-certs`, which honours `SSL_CERT_FILE` and `SSL_CERT_DIR`).
    System,
    /// Only the certificates in this PEM file: a private CA's, say.
    CaFile(PathBuf),
}

/// The mode a connection string gets when the options name none.
pub(crate) fn default_mode(config: &tokio_postgres::Config) -> TlsMode {
    match config.get_ssl_mode() {
        SslMode::Disable => TlsMode::Disable,
        SslMode::Require => TlsMode::system_roots(),
        _ if is_local(config) => TlsMode::Disable,
        _ => TlsMode::system_roots(),
    }
}

/// Whether every host the connection string names is this machine.
fn is_local(config: &tokio_postgres::Config) -> bool {
    let hosts = config.get_hosts().iter().all(|host| match host {
        Host::Tcp(name) => {
            let name = name.trim_start_matches('[').trim_end_matches(']');
            name.eq_ignore_ascii_case("localhost")
                || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        #[cfg(unix)]
        Host::Unix(_) => true,
    });
    hosts && config.get_hostaddrs().iter().all(IpAddr::is_loopback)
}

/// A rustls connector trusting `roots`, with the ring provider and rustls's safe
/// default protocol versions.
///
/// rustls now prefers its aws-lc-rs provider, for post-quantum key exchange; ring
/// is kept because it builds without CMake or NASM, and the link to a database
/// stays inside the operator's network.
#[expect(
    deprecated,
    reason = "ring's provider lacks post-quantum key exchange; see above"
)]
pub(crate) fn connector(roots: &TlsRoots) -> Result<MakeRustlsConnect, PostgresError> {
    let mut store = rustls::RootCertStore::empty();
    match roots {
        TlsRoots::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(PostgresError::NoSystemRoots {
                    source: found.errors.into_iter().next(),
                });
            }
        }
        TlsRoots::CaFile(path) => {
            for cert in ca_file(path)? {
                store
                    .add(cert)
                    .map_err(|source| PostgresError::InvalidCaCertificate {
                        path: path.clone(),
                        source,
                    })?;
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| PostgresError::Tls { source })?
        .with_root_certificates(store)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// The certificates of a PEM file: at least one, or an error naming the file.
fn ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, PostgresError> {
    let invalid = |source| PostgresError::InvalidCaFile {
        path: path.to_owned(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(invalid)?
        .collect::<Result<Vec<_>, pem::Error>>()
        .map_err(invalid)?;
    if certs.is_empty() {
        return Err(invalid(pem::Error::NoItemsFound));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(url: &str) -> TlsMode {
        default_mode(&url.parse().expect("a connection string"))
    }

    #[test]
    fn loopback_hosts_default_to_plaintext_and_others_to_tls() {
        for local in [
            "postgres://u@127.0.0.1:5432/db",
            "postgres://u@127.0.0.2/db",
            "postgres://u@localhost/db",
            "postgres://u@[::1]:5432/db",
            "host=/var/run/postgresql user=u",
            "host=localhost,127.0.0.1 user=u",
        ] {
            assert_eq!(mode(local), TlsMode::Disable, "{local}");
        }
        for remote in [
            "postgres://u@db.internal:5432/db",
            "postgres://u@10.0.0.5/db",
            "host=localhost,db.internal user=u",
            "host=localhost hostaddr=10.0.0.5 user=u",
        ] {
            assert_eq!(mode(remote), TlsMode::system_roots(), "{remote}");
        }
    }

    #[test]
    fn an_explicit_sslmode_wins_over_the_host() {
        assert_eq!(
            mode("postgres://u@db.internal/db?sslmode=disable"),
            TlsMode::Disable
        );
        assert_eq!(
            mode("postgres://u@127.0.0.1/db?sslmode=require"),
            TlsMode::system_roots()
        );
        assert_eq!(
            mode("postgres://u@127.0.0.1/db?sslmode=prefer"),
            TlsMode::Disable
        );
    }
}
