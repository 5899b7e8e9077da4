/**
 * Command-line tools built on the routing core, registered by the {@code inmesh} launcher: {@code inmesh route-check}
 * (Envoy's router_check_tool test files against Inmesh's route table) and {@code inmesh proxy-config} (istioctl's
 * proxy-config tables from an admin server's or a file's config dump, and the endpoint table from an admin server's
 * {@code /clusters?format=json}).
 */
package dev.inmesh.runtime.tools;
