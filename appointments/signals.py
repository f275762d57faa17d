"""What the appointments domain announces, for the floors above it to act on without the domain importing them."""

from django.dispatch import Signal

# A change touched a doctor's queue (a booking, a status move, a reschedule): sent inside the change's
# transaction with `doctor_id` and `days` (the dates whose queue it changed). queues.receivers sends
# the queue's alerts on it (who is now next in line), after the change commits.
queue_days_changed = Signal()
