package dev.inmesh.runtime.mesh;

/** Bootstraps with a {@code node}, as Istio's agent writes {@code envoy-rev.json}, for the tests of several modules. */
public final class BootstrapNodes {
    /** The node id of {@link #REVIEWS_V2}. */
    public static final String REVIEWS_V2_ID = "sidecar~10.1.2.3~reviews-v2-7f9c-abcde.shop~shop.svc.cluster.local";

    /** A sidecar of reviews-v2 in namespace shop of cluster cl-east, Istio 1.26.1, with no resources. */
    public static final String REVIEWS_V2 = """
            node:
              id: %s
              cluster: reviews.shop
              metadata:
                NAME: reviews-v2-7f9c-abcde
                NAMESPACE: shop
                WORKLOAD_NAME: reviews-v2
                CLUSTER_ID: cl-east
                ISTIO_VERSION: 1.26.1
                INSTANCE_IPS: 10.1.2.3,fd00::3
                LABELS:
                  app: reviews
                  version: v2
                  service.istio.io/canonical-name: reviews
                  service.istio.io/canonical-revision: v2
            static_resources: {}
            """.formatted(REVIEWS_V2_ID);

    private BootstrapNodes() {}
}
