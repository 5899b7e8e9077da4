/**
 * External authorization, as Envoy's ext_authz HTTP filter ({@code envoy.filters.http.ext_authz},
 * {@code ExtAuthz}) configures it and as istiod writes an AuthorizationPolicy with {@code action: CUSTOM}:
 * {@link dev.inmesh.api.config.extauthz.ExtAuthz}, the authorizer it asks (an HTTP service or a gRPC
 * {@code envoy.service.auth.v3.Authorization} service, each reached through a cluster) and what it does with the answer.
 */
package dev.inmesh.api.config.extauthz;
