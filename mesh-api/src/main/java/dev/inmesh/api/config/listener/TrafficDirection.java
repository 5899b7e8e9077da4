package dev.inmesh.api.config.listener;

/** Which way a listener's traffic flows, relative to the workload. */
public enum TrafficDirection { UNSPECIFIED, INBOUND, OUTBOUND }
