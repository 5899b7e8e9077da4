package dev.inmesh.api.config.listener;

/** The terminal network filter of a filter chain: an HTTP connection manager or a TCP proxy. */
public sealed interface NetworkFilter permits HttpConnectionManager, TcpProxy {}
