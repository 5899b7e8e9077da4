/**
 * A pure iptables rule generator: a resolved, validated {@link dev.inmesh.interception.rules.CaptureConfig} goes in,
 * an ordered {@link dev.inmesh.interception.rules.RuleSet} (rules per table, per IP family) comes out, and the rule
 * set renders itself as {@code iptables-restore} input. For the same flags the text is the one istio-iptables
 * produces. Nothing in this package reads files, the environment or the network, or runs a command.
 */
package dev.inmesh.interception.rules;
