/**
 * Role based access control, as Envoy's {@code config.rbac.v3} and its HTTP filter
 * ({@code envoy.filters.http.rbac}) configure it, and as Istio writes an AuthorizationPolicy:
 * {@link dev.inmesh.api.config.rbac.Rbac}, its policies, and the {@link dev.inmesh.api.config.rbac.Permission}s and
 * {@link dev.inmesh.api.config.rbac.Principal}s a policy matches.
 */
package dev.inmesh.api.config.rbac;
