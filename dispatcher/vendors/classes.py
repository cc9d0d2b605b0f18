"""One-letter names of the error classes, for the vendors' code tables (one row a code, one line a row).

A table row reads ``(-16, R, "提交太频繁", "submitted too frequently")``: the class is the letter.
"""

from __future__ import annotations

from dispatcher.vendors.wire import ErrorClass

R = ErrorClass.RATE_LIMITED
T = ErrorClass.RETRY_LATER
P = ErrorClass.BAD_RECIPIENT
C = ErrorClass.BAD_CONTENT
Q = ErrorClass.BAD_REQUEST
A = ErrorClass.ACCOUNT
D = ErrorClass.DUPLICATE
