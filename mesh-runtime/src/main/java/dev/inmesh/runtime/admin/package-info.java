/**
 * The admin server, as Envoy's and Istio's: {@link dev.inmesh.runtime.admin.AdminServer} serves {@code /config_dump}
 * (Envoy's v3 ConfigDump of the current snapshot, built by {@link dev.inmesh.runtime.admin.ConfigDumpBuilder} from the
 * original xDS messages, with Envoy's {@code include_eds}, {@code resource} and {@code mask}),
 * {@code /stats/prometheus}, {@code /stats}, {@code /server_info}, {@code /listeners}, {@code /help}, {@code /ready},
 * Istio's {@code /healthz/ready} and {@code /clusters} (text or JSON, from a
 * {@link dev.inmesh.runtime.admin.ClusterStatusSource}), each on any set of ports, so that the admin port
 * 15000, the health port 15021 and the stats ports 15090/15020 can be served as Istio lays them out.
 * Nothing it does blocks an event loop: scrapes and JSON printing run on worker threads.
 */
package dev.inmesh.runtime.admin;
