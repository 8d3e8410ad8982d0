//! The TLS crypto provider of the process's one HTTP stack.
//!
//! reqwest is built without a crypto provider of its own (its `rustls`
//! feature would bring aws-lc, a second crypto library beside the ring
//! that rustls already uses): both clients that use it, the model HTTP
//! client and rmcp's MCP client, take rustls' process default, set here.

/// Installs ring as rustls' process default, once; before any reqwest
/// client is built.
pub(crate) fn use_ring() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err: a default was installed already, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
