/**
 * The transparent path's command line: {@code inmesh iptables}, an istio-iptables compatible installer of the rules
 * that send an unmodified application's traffic through the proxy. The generator lives in {@code rules}, the
 * installer in {@code install}, and the {@code --run-validation} probe in {@code validation}; this package only
 * resolves flags, environment and host facts and wires them together.
 */
package dev.inmesh.interception;
