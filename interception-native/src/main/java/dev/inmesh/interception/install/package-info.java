/**
 * Puts a generated {@link dev.inmesh.interception.rules.RuleSet} into the kernel and takes it out again: apply with
 * {@code iptables-restore --noflush} (and the TPROXY policy route), verify, clean up, dry-run, and roll back whatever
 * was applied when a later step fails, so a failure never leaves half-installed chains. Every command goes through a
 * {@link dev.inmesh.interception.install.CommandRunner}, which tests replace with a fake and which can run commands
 * inside a network namespace.
 */
package dev.inmesh.interception.install;
