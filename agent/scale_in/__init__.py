"""Scale-in: node timers (tracking), the scale-in/v1 rounds (rounds) and cordon/remove/uncordon
(actuation)."""
