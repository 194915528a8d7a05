"""Write-side services of the portfolio app. The update path that drives them (with the
risk manager) is ``operations.update``."""
