package dev.inmesh.api.config.rbac;

import dev.inmesh.api.config.Checks;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The config of one RBAC HTTP filter ({@code extensions.filters.http.rbac.v3.RBAC}): the rules it enforces and the
 * shadow rules it only counts.
 *
 * @param rules the enforced rules, or null for none (every request is allowed, as Envoy allows all without rules)
 * @param rulesStatPrefix the extra prefix of the {@code allowed} and {@code denied} statistics, or empty
 * @param shadowRules the rules evaluated for statistics only ({@code shadow_allowed}, {@code shadow_denied}), never
 *     denying; null for none
 * @param shadowRulesStatPrefix the extra prefix of the shadow statistics, or empty
 */
public record Rbac(Rules rules, String rulesStatPrefix, Rules shadowRules, String shadowRulesStatPrefix) {
    /** An RBAC config without rules: it allows everything (as an {@code RBACPerRoute} without {@code rbac}). */
    public static final Rbac ALLOW_ALL = new Rbac(null, "", null, "");

    public Rbac {
        rulesStatPrefix = rulesStatPrefix == null ? "" : rulesStatPrefix;
        shadowRulesStatPrefix = shadowRulesStatPrefix == null ? "" : shadowRulesStatPrefix;
    }

    /** What a request matching a policy gets. */
    public enum Action {
        /** A request is allowed only when it matches a policy. */
        ALLOW,
        /** A request is denied when it matches a policy. */
        DENY,
        /** Every request is allowed; a match only marks it for logging. */
        LOG
    }

    /**
     * Envoy's {@code config.rbac.v3.RBAC}: an action and named policies. The policies are kept sorted by name, the
     * order in which Envoy names the policy that decided ({@code rbac_access_denied_matched_policy[NAME]}).
     *
     * @param action the action
     * @param policies the policies by name; empty: no request matches
     */
    public record Rules(Action action, Map<String, Policy> policies) {
        public Rules {
            Checks.nonNull(action, "action");
            policies = policies == null ? Map.of() : Collections.unmodifiableMap(new TreeMap<>(policies));
        }
    }

    /**
     * One policy: it matches a request when any of its permissions and any of its principals do.
     *
     * @param permissions what the request does (at least one)
     * @param principals who sends it (at least one)
     */
    public record Policy(List<Permission> permissions, List<Principal> principals) {
        public Policy {
            permissions = Checks.list(permissions, "permissions");
            principals = Checks.list(principals, "principals");
            Checks.check(!permissions.isEmpty(), "permissions", "[]", "at least one permission");
            Checks.check(!principals.isEmpty(), "principals", "[]", "at least one principal");
        }
    }
}
