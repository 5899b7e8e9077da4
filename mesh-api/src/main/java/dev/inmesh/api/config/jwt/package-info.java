/**
 * JWT authentication, as Envoy's JWT authentication HTTP filter ({@code envoy.filters.http.jwt_authn},
 * {@code JwtAuthentication}) configures it and as istiod writes a RequestAuthentication:
 * {@link dev.inmesh.api.config.jwt.JwtAuthentication}, its providers and the requirements its rules ask of a request.
 */
package dev.inmesh.api.config.jwt;
