/**
 * A workload identity from Istio's CA: {@link dev.inmesh.runtime.identity.IstioCaClient} makes a key and a CSR for
 * the workload's SPIFFE identity, has istiod's {@code IstioCertificateService/CreateCertificate} sign it, and keeps a
 * directory filled with {@code cert-chain.pem}, {@code key.pem} and {@code root-cert.pem}, the files Istio's agent
 * writes to its {@code OUTPUT_CERTS} directory, renewing the certificate at half its lifetime.
 *
 * <p>Public: {@link dev.inmesh.runtime.identity.IstioCaClient} and its options
 * ({@link dev.inmesh.runtime.identity.IstioCaOptions}). The rest is package-private.
 */
package dev.inmesh.runtime.identity;
