package dev.inmesh.samples.bookinfo;

import java.util.List;

/**
 * One pod of the sample: its app and version labels and its own loopback address. Its workload is
 * {@code app-version} and it listens on {@link #PORT}, like a pod behind a Kubernetes service.
 *
 * @param app the {@code app} label, which is also the service name
 * @param version the {@code version} label
 * @param ip the pod's address, the endpoint address in {@code mesh/40-endpoints.json}
 */
public record PodSpec(String app, String version, String ip) {
    /** The port every service listens on, as in Istio's bookinfo. */
    public static final int PORT = 9080;

    public static final PodSpec PRODUCTPAGE = new PodSpec("productpage", "v1", "127.0.0.10");
    public static final PodSpec DETAILS = new PodSpec("details", "v1", "127.0.0.11");
    public static final PodSpec REVIEWS_V1 = new PodSpec("reviews", "v1", "127.0.0.12");
    public static final PodSpec REVIEWS_V2 = new PodSpec("reviews", "v2", "127.0.0.13");
    public static final PodSpec REVIEWS_V3 = new PodSpec("reviews", "v3", "127.0.0.14");
    public static final PodSpec RATINGS = new PodSpec("ratings", "v1", "127.0.0.15");

    /** The pods the mesh configuration knows, in start order (callees first). */
    public static final List<PodSpec> ALL = List.of(RATINGS, REVIEWS_V1, REVIEWS_V2, REVIEWS_V3, DETAILS, PRODUCTPAGE);

    /** The workload's name, such as {@code reviews-v2}. */
    public String workload() {
        return app + "-" + version;
    }

    /** The service's host name in the mesh, such as {@code reviews.default.svc.cluster.local}. */
    public String fqdn() {
        return app + ".default.svc.cluster.local";
    }

    /** Where the pod serves: {@code http://ip:9080}. */
    public String url() {
        return "http://" + ip + ":" + PORT;
    }
}
