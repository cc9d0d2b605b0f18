"""The results side: reports and replies reconciled, opt-outs, exports."""
